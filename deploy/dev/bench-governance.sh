#!/usr/bin/env bash
# make bench-governance: what authentication, rate limiting (requests, tokens, per key, per
# tenant, per model, in flight) and audit add to a request at the gateway, and schemathesis over
# the gateway's /openapi.json. Release builds of every service the public routes reach, the
# test-profile servers on bench ports, an instant upstream.
#   - added_p50_ms / added_p99_ms: PAIRS (2000) pairs of chat requests, one at a time on a
#     kept-alive connection to each of two gateways side by side — the same binary, one governed
#     (a developer key under seven limits: its requests, tokens and model, its tenant's requests
#     and tokens, both in-flight caps; the audit trail on) and one with
#     CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1 (no key, no limits, no audit) — alternating which goes
#     first; added is the governed percentile minus the ungoverned one.
#   - schemathesis_*: `schemathesis run` over /openapi.json against the governed gateway with
#     the platform admin's key, EXAMPLES (25) cases per operation and its stateful phase, checks
#     not_a_server_error and response_schema_conformance: operations, cases, failures (must be
#     0). The four operations that can lock the run's own key out (PATCH a tenant or a key,
#     revoke, rotate) run after the rest, on their own.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/governance"
PAIRS=${PAIRS:-2000}
EXAMPLES=${EXAMPLES:-25}
PG_PORT=55832 REDIS_PORT=56879 KAFKA_PORT=59592
UPSTREAM_PORT=19190 GATEWAY_PORT=19180 OPEN_PORT=19187 ORCHESTRATOR_PORT=19181 EMBEDDER_PORT=19182 RETRIEVER_PORT=19183 COST_PORT=19184 REGISTRY_PORT=19185
VENV="$ROOT/.stack/schemathesis-venv"
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
if [ ! -x "$VENV/bin/schemathesis" ]; then
    say "installing schemathesis (pip, into .stack/schemathesis-venv)"
    python3 -m venv "$VENV" >/dev/null
    "$VENV/bin/pip" install -q --disable-pip-version-check schemathesis >/dev/null 2>&1 || { say "bench-governance: could not install schemathesis"; exit 1; }
fi
say "building the services and the upstream (release)…"
BIN=$("$STACK" release-build gateway orchestrator embedder retriever cost-service prompt-registry bench-gateway-upstream)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"
bench_priced_upstream "$BIN" "$UPSTREAM_PORT"
KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
INTERNAL_KEY="bench-internal-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
mapfile -t base < <("$STACK" env test | grep -E '^(LD_LIBRARY_PATH|CONDUIT_MINILM_DIR|OPENBLAS_CORETYPE)=')
common=("${base[@]}" CONDUIT_INTERNAL_KEY="$INTERNAL_KEY" CONDUIT_RETRIEVER_SNAPSHOT_DIR="$DIR/snapshots"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT CONDUIT_EMBEDDER_URL=http://127.0.0.1:$EMBEDDER_PORT
        CONDUIT_RETRIEVER_URL=http://127.0.0.1:$RETRIEVER_PORT CONDUIT_COST_SERVICE_URL=http://127.0.0.1:$COST_PORT
        CONDUIT_PROMPT_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT CONDUIT_LOG_LEVEL=warning CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=10000)
env "${common[@]}" CONDUIT_EMBEDDER_PORT=$EMBEDDER_PORT "$BIN/embedder" >"$DIR/embedder.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_RETRIEVER_PORT=$RETRIEVER_PORT "$BIN/retriever" >"$DIR/retriever.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_COST_SERVICE_PORT=$COST_PORT "$BIN/cost-service" >"$DIR/cost-service.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_PROMPT_REGISTRY_PORT=$REGISTRY_PORT "$BIN/prompt-registry" >"$DIR/prompt-registry.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" CONDUIT_CACHE_ENABLED=false \
    "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$GATEWAY_PORT CONDUIT_ADMIN_KEY="$KEY" CONDUIT_ADMIN_TENANT=bench \
    "$BIN/gateway" >"$DIR/gateway.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$OPEN_PORT CONDUIT_ADMIN_TENANT=bench CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1 \
    CONDUIT_GATEWAY_AUDIT_GROUP=bench-ungoverned-audit "$BIN/gateway" >"$DIR/gateway-ungoverned.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/" && break; sleep 0.2; done
for port in $EMBEDDER_PORT $RETRIEVER_PORT $COST_PORT $REGISTRY_PORT $ORCHESTRATOR_PORT $GATEWAY_PORT $OPEN_PORT; do
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.3; done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { say "bench-governance: the service on $port did not become ready (logs in $DIR)"; exit 1; }
done

say "measuring governance ($PAIRS pairs of requests, one at a time), then schemathesis…"
python3 - "$DIR" "$KEY" "$GATEWAY_PORT" "$OPEN_PORT" "$PAIRS" "$VENV/bin/schemathesis" "$EXAMPLES" <<'PY'
import http.client, json, re, subprocess, sys, time, urllib.request
import xml.etree.ElementTree as ElementTree
directory, admin, governed_port, open_port, pairs, schemathesis, examples = sys.argv[1:8]
base = f"http://127.0.0.1:{governed_port}"
def call(method, path, body=None, key=admin):
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")

# A developer key under every kind of limit, in a tenant with limits of its own.
status, tenant = call("PATCH", "/v1/tenants/bench", {"rpm_limit": 10_000_000, "tpm_limit": 1_000_000_000, "max_concurrent": 10_000})
assert status == 200, tenant
status, made = call("POST", "/v1/keys", {"role": "developer", "name": "bench", "rpm_limit": 10_000_000, "tpm_limit": 1_000_000_000,
                                          "max_concurrent": 10_000, "model_limits": {"bench": {"rpm_limit": 10_000_000}}})
assert status == 201, made
developer = made["key"]
time.sleep(1.5)  # every replica's watcher has the key

chat = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Hello, who are you?"}], "max_tokens": 32})
connections = {"governed": http.client.HTTPConnection("127.0.0.1", int(governed_port), timeout=30),
               "open": http.client.HTTPConnection("127.0.0.1", int(open_port), timeout=30)}
headers = {"governed": {"Authorization": f"Bearer {developer}", "Content-Type": "application/json"},
           "open": {"Content-Type": "application/json"}}
latencies = {"governed": [], "open": []}
limited = None
for index in range(int(pairs) + 100):
    for who in (("governed", "open") if index % 2 == 0 else ("open", "governed")):
        started = time.perf_counter()
        connections[who].request("POST", "/v1/chat/completions", body=chat, headers=headers[who])
        response = connections[who].getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200: sys.exit(f"bench-governance: a {who} request answered {response.status}")
        if who == "governed":
            limited = response.getheader("x-ratelimit-limit-tokens")
        if index >= 100: latencies[who].append(elapsed)  # the first hundred warm up
if limited != "1000000000": sys.exit(f"bench-governance: the governed answers carried no token limit ({limited})")
def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
governed = (percentile(latencies["governed"], 0.5), percentile(latencies["governed"], 0.99))
ungoverned = (percentile(latencies["open"], 0.5), percentile(latencies["open"], 0.99))

# schemathesis over the contract, against the governed gateway.
junit = f"{directory}/schemathesis.xml"
# Changing or revoking keys and tenants may lock the run's own key out (schemathesis finds the
# admin's tenant and key through the lists): those four operations run last, on their own.
own = "^(patch_v1_tenants_id|patch_v1_keys_id|delete_v1_keys_id|post_v1_keys_id_rotate)$"
operations = failures = generated = rate_limited = 0
log = ""
for part, selection in (("main", ["--exclude-operation-id-regex", own]), ("own", ["--include-operation-id-regex", own])):
    junit = f"{directory}/schemathesis-{part}.xml"
    run = subprocess.run([schemathesis, "run", f"{base}/openapi.json", "-H", f"Authorization: Bearer {admin}", *selection,
                          "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", examples,
                          "--request-timeout", "30", "--continue-on-failure", "--report", "junit", "--report-junit-path", junit,
                          "--no-color"], capture_output=True, text=True)
    log += run.stdout + run.stderr
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        operations += 1
        if case.find("failure") is not None or case.find("error") is not None: failures += 1
    found = re.search(r"(\d+) generated", run.stdout)
    generated += int(found.group(1)) if found else 0
    if part == "main" and "Rate limited" in run.stdout: rate_limited = 1
open(f"{directory}/schemathesis.txt", "w").write(log)
if rate_limited: sys.exit("bench-governance: schemathesis was rate limited, so it tested little (see schemathesis.txt)")
print(f"governed p50 {governed[0]:.3f} ms p99 {governed[1]:.3f} ms; ungoverned p50 {ungoverned[0]:.3f} ms p99 {ungoverned[1]:.3f} ms", file=sys.stderr)
print(f"schemathesis: {operations} operations, {failures} failing (details in {directory}/schemathesis.txt)", file=sys.stderr)
print(f"bench-governance: added_p50_ms={governed[0] - ungoverned[0]:.3f} added_p99_ms={governed[1] - ungoverned[1]:.3f} "
      f"governed_p50_ms={governed[0]:.3f} governed_p99_ms={governed[1]:.3f} ungoverned_p50_ms={ungoverned[0]:.3f} "
      f"ungoverned_p99_ms={ungoverned[1]:.3f} pairs={len(latencies['open'])} schemathesis_operations={operations} "
      f"schemathesis_cases={generated} schemathesis_failures={failures}")
sys.exit(1 if failures else 0)
PY
