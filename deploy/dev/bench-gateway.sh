#!/usr/bin/env bash
# make bench-gateway: what Conduit's gateway + orchestrator add to a chat request, beside
# LiteLLM's proxy, in one run on the same machine. Both sit in front of the same instant
# upstream (bench-gateway-upstream, OpenAI's wire format); wrk drives each with the same load
# (64 connections, non-streaming and streaming), and also the upstream directly, so "added"
# latency is the proxy's percentile minus the direct one. Conduit runs as deployed: API key
# checked against Postgres (cached), usage event to Kafka per request, JSON request logs.
# LiteLLM runs in its own virtualenv (.stack/bench-gateway-venv), one worker, no database.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/gateway"
VENV="$ROOT/.stack/bench-gateway-venv"
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
PG_PORT=55632 REDIS_PORT=56579 KAFKA_PORT=59392
UPSTREAM_PORT=18990 GATEWAY_PORT=18980 ORCHESTRATOR_PORT=18981 LITELLM_PORT=18995
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
bench_need_wrk
if ! "$VENV/bin/litellm" --version >/dev/null 2>&1; then
    say "installing litellm[proxy] into $VENV…"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'litellm[proxy]' >&2
fi
say "building gateway, orchestrator and the upstream (release)…"
BIN=$("$STACK" release-build gateway orchestrator bench-gateway-upstream)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"
wait_http() {  # URL
    for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done
    say "bench-gateway: $1 did not come up"; exit 1
}

"$BIN/bench-gateway-upstream" "$UPSTREAM_PORT" >"$DIR/upstream.log" 2>&1 & PIDS+=($!)
cat >"$DIR/models.yaml" <<YAML
models:
  - name: bench
    deployments:
      - {id: bench-upstream, provider: openai, model: bench, base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1"}
YAML
# One key for both: the gateway installs it as its admin key, LiteLLM takes it as its master key.
KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
common=(LD_LIBRARY_PATH="$("$STACK" env test | sed -n 's/^LD_LIBRARY_PATH=//p')"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT)
# The semantic cache is off, like LiteLLM's: both measure the proxying, not an embedder call.
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" CONDUIT_CACHE_ENABLED=false \
    "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$GATEWAY_PORT CONDUIT_ADMIN_KEY="$KEY" \
    "$BIN/gateway" >"$DIR/gateway.log" 2>&1 & PIDS+=($!)
cat >"$DIR/litellm.yaml" <<YAML
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$UPSTREAM_PORT/v1
      api_key: sk-bench
general_settings:
  master_key: $KEY
YAML
(cd "$DIR" && exec env LITELLM_LOG=ERROR "$VENV/bin/litellm" --config "$DIR/litellm.yaml" --host 127.0.0.1 --port "$LITELLM_PORT" --num_workers 1) \
    >"$DIR/litellm.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$UPSTREAM_PORT/"
wait_http "http://127.0.0.1:$ORCHESTRATOR_PORT/readyz"
until curl -sf "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null; do sleep 0.3; done
wait_http "http://127.0.0.1:$LITELLM_PORT/health/liveliness"

BODY='{"model":"bench","messages":[{"role":"user","content":"Hello, who are you?"}],"max_tokens":32}'
STREAM_BODY='{"model":"bench","stream":true,"messages":[{"role":"user","content":"Hello, who are you?"}],"max_tokens":32}'
# Each target answers once before it is measured, so a broken set-up fails loudly here.
for url in "http://127.0.0.1:$GATEWAY_PORT" "http://127.0.0.1:$LITELLM_PORT"; do
    answer=$(curl -s "$url/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$BODY")
    grep -q '"Hello! How can I help you today?"' <<<"$answer" || { say "bench-gateway: $url answered: $answer"; exit 1; }
done

run() {  # NAME URL BODY → writes $DIR/NAME.txt
    local name=$1 url=$2 body=$3
    cat >"$DIR/$name.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
    wrk -t2 -c"$CONNECTIONS" -d3s --timeout 30s -s "$DIR/$name.lua" "$url" >/dev/null  # warm-up
    say "  $name…"
    # A generous timeout, so a slow proxy's answers are measured rather than dropped.
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency -s "$DIR/$name.lua" "$url" >"$DIR/$name.txt"
}
say "measuring ($CONNECTIONS connections, $DURATION each)…"
for mode in json stream; do
    body=$BODY; [ "$mode" = json ] || body=$STREAM_BODY
    run "direct-$mode" "http://127.0.0.1:$UPSTREAM_PORT/v1/chat/completions" "$body"
    run "conduit-$mode" "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" "$body"
    run "litellm-$mode" "http://127.0.0.1:$LITELLM_PORT/v1/chat/completions" "$body"
done

python3 - "$DIR" <<'PY'
import re, sys
directory = sys.argv[1]
def parse(name):
    text = open(f"{directory}/{name}.txt").read()
    def ms(value, unit):
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {int(p): ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\b", text, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return rps, pct[50], pct[99], failures
summary = {}
for mode in ("json", "stream"):
    direct, ours, litellm = parse(f"direct-{mode}"), parse(f"conduit-{mode}"), parse(f"litellm-{mode}")
    print(f"{mode:6}  {'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'failed':>7}", file=sys.stderr)
    for name, (rps, p50, p99, failed) in (("upstream", direct), ("conduit", ours), ("litellm", litellm)):
        added = "" if name == "upstream" else f"{max(0.0, p50 - direct[1]):10.2f} {max(0.0, p99 - direct[2]):10.2f}"
        print(f"        {name:10} {rps:9.0f} {p50:8.2f} {p99:8.2f} {added:>21} {failed:7d}", file=sys.stderr)
    if ours[3] or direct[3]:
        print(f"bench-gateway: failed requests during the {mode} run (conduit {ours[3]}, upstream {direct[3]})", file=sys.stderr)
        sys.exit(1)
    added_ours = max(0.01, ours[2] - direct[2])
    added_litellm = max(0.01, litellm[2] - direct[2])
    summary[mode] = (ours[0], litellm[0], ours[0] / litellm[0], added_ours, added_litellm, added_ours / added_litellm)
o_rps, l_rps, r_rps, o_p99, l_p99, r_p99 = summary["json"]
s_o_rps, s_l_rps, s_r_rps, s_o_p99, s_l_p99, s_r_p99 = summary["stream"]
print(f"bench-gateway: ours_rps={o_rps:.0f} litellm_rps={l_rps:.0f} ratio_rps={r_rps:.1f} ours_p99_ms={o_p99:.2f} litellm_p99_ms={l_p99:.2f} ratio_p99={r_p99:.3f} "
      f"stream_ours_rps={s_o_rps:.0f} stream_litellm_rps={s_l_rps:.0f} stream_ratio_rps={s_r_rps:.1f} stream_ours_p99_ms={s_o_p99:.2f} stream_litellm_p99_ms={s_l_p99:.2f} stream_ratio_p99={s_r_p99:.3f}")
PY
