#!/usr/bin/env bash
# make bench-prompts: what a prompt template costs the chat path, the registry API under
# concurrent reads, and the experiment statistics on simulations. Release builds of gateway,
# orchestrator, prompt-registry and cost-service over the test-profile servers on bench ports,
# and an instant upstream.
#   - prompt_added_p50_ms / _p99_ms: PAIRS (10000) pairs of chat requests through the gateway,
#     one at a time on a kept-alive connection each, alternating: one with `conduit.prompt` (a
#     chat template with a partial, a placeholder and four variables), one with the same
#     messages written out; added is the first's percentile minus the second's. The version is
#     served from the orchestrator's compiled copy (its change poll keeps it fresh).
#     prompt_stage_p99_ms: the same run's prompt stage alone, from the orchestrator's
#     conduit_chat_stage_duration_seconds histogram (a bucket bound: 0.1, 0.25, 0.5, 1 … ms).
#   - registry_p99_ms: GET /v1/prompts/{name} through the gateway, CONNECTIONS (8) at once for
#     DURATION (10s), with wrk: the p99 a console or SDK sees (auth and rate limits included).
#   - ab_power_100 / aa_false_positive: bench-prompts-stats, 1,000 simulated experiments each
#     (the registry's own statistics code): 0.5 vs 0.9 decided within 100 trials per variant;
#     A/A at 0.5 with 1,000 trials per variant, looked at after every trial, wrongly decided.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/prompts"
DURATION=${DURATION:-10s}
PAIRS=${PAIRS:-10000}
CONNECTIONS=${CONNECTIONS:-8}
PG_PORT=55932 REDIS_PORT=56979 KAFKA_PORT=59692
UPSTREAM_PORT=19290 GATEWAY_PORT=19280 ORCHESTRATOR_PORT=19281 COST_PORT=19284 REGISTRY_PORT=19285
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
bench_need_wrk
say "building gateway, orchestrator, prompt-registry, the upstream and the statistics (release)…"
BIN=$("$STACK" release-build gateway orchestrator prompt-registry cost-service bench-gateway-upstream bench-prompts-stats)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"

bench_priced_upstream "$BIN" "$UPSTREAM_PORT"
KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
INTERNAL_KEY="bench-internal-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
common=(LD_LIBRARY_PATH="$("$STACK" env test | sed -n 's/^LD_LIBRARY_PATH=//p')" CONDUIT_INTERNAL_KEY="$INTERNAL_KEY"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT CONDUIT_PROMPT_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT
        CONDUIT_COST_SERVICE_URL=http://127.0.0.1:$COST_PORT CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=7000
        CONDUIT_GATEWAY_RPM_PER_KEY=0 CONDUIT_GATEWAY_RPM_PER_TENANT=0)
env "${common[@]}" CONDUIT_PROMPT_REGISTRY_PORT=$REGISTRY_PORT "$BIN/prompt-registry" >"$DIR/prompt-registry.log" 2>&1 & PIDS+=($!)
# The cost-service as deployed (the chat path checks budgets; none applies here).
env "${common[@]}" CONDUIT_COST_SERVICE_PORT=$COST_PORT "$BIN/cost-service" >"$DIR/cost-service.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" CONDUIT_CACHE_ENABLED=false \
    "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$GATEWAY_PORT CONDUIT_ADMIN_KEY="$KEY" CONDUIT_ADMIN_TENANT=bench \
    "$BIN/gateway" >"$DIR/gateway.log" 2>&1 & PIDS+=($!)
bench_wait_http "http://127.0.0.1:$UPSTREAM_PORT/"
bench_wait_http "http://127.0.0.1:$REGISTRY_PORT/readyz"
bench_wait_http "http://127.0.0.1:$COST_PORT/readyz"
bench_wait_http "http://127.0.0.1:$ORCHESTRATOR_PORT/readyz"
until curl -sf "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null; do sleep 0.3; done

say "measuring the chat path with and without a template ($PAIRS pairs, one request at a time)…"
python3 - "$DIR" "$KEY" "$GATEWAY_PORT" "$PAIRS" "$CONNECTIONS" "$DURATION" <<'PY' >"$DIR/chat.txt"
import http.client, json, subprocess, sys, time
directory, key, gateway, pairs, connections, duration = sys.argv[1:7]
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
def call(method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", int(gateway), timeout=30)
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")
for prompt in [{"name": "bench/tone", "template": "Be {{tone}}.", "labels": ["production"]},
               {"name": "bench/support", "type": "chat", "labels": ["production"], "config": {"temperature": 0.2},
                "messages": [{"role": "system", "content": "You help {{customer}} with {{product}}. {{> bench/tone}}"},
                             {"type": "placeholder", "name": "history"}, {"role": "user", "content": "{{question}}"}]}]:
    status, answer = call("POST", "/v1/prompts", prompt)
    if status != 201: sys.exit(f"bench-prompts: creating {prompt['name']} answered {status}: {answer}")
history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
templated = {"model": "bench", "max_tokens": 32, "messages": [],
             "conduit": {"prompt": {"name": "bench/support", "variables": {"customer": "Ann", "product": "Conduit", "tone": "kind",
                                                                            "question": "Hello, who are you?", "history": history}}}}
plain = {"model": "bench", "max_tokens": 32, "temperature": 0.2, "messages": [
    {"role": "system", "content": "You help Ann with Conduit. Be kind."}] + history + [{"role": "user", "content": "Hello, who are you?"}]}
status, answer = call("POST", "/v1/chat/completions", templated)
if status != 200 or answer.get("conduit", {}).get("prompt", {}).get("version") != 1:
    sys.exit(f"bench-prompts: the templated request answered {status}: {answer}")
bodies = {"prompt": json.dumps(templated), "plain": json.dumps(plain)}
links = {who: http.client.HTTPConnection("127.0.0.1", int(gateway), timeout=30) for who in bodies}
latencies = {who: [] for who in bodies}
for index in range(int(pairs) + 100):
    for who in (("prompt", "plain") if index % 2 == 0 else ("plain", "prompt")):
        started = time.perf_counter()
        links[who].request("POST", "/v1/chat/completions", body=bodies[who], headers=headers)
        response = links[who].getresponse()
        response.read()
        if response.status != 200: sys.exit(f"bench-prompts: a paired request answered {response.status}")
        if index >= 100: latencies[who].append((time.perf_counter() - started) * 1000)
def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
with_prompt = (percentile(latencies["prompt"], 0.5), percentile(latencies["prompt"], 0.99))
without = (percentile(latencies["plain"], 0.5), percentile(latencies["plain"], 0.99))
print(f"prompt_p50_ms={with_prompt[0]:.3f} prompt_p99_ms={with_prompt[1]:.3f} plain_p50_ms={without[0]:.3f} plain_p99_ms={without[1]:.3f} "
      f"prompt_added_p50_ms={with_prompt[0] - without[0]:.3f} prompt_added_p99_ms={with_prompt[1] - without[1]:.3f}")
PY
say "$(cat "$DIR/chat.txt")"
# The orchestrator's own account of the prompt stage (lookup in memory, render, config), from its
# histogram: the bucket bound where p50 and p99 of the stage's prepare fall.
stage=$(curl -s "http://127.0.0.1:$ORCHESTRATOR_PORT/metrics" | python3 -c '
import re, sys
buckets = sorted((float(m.group(1)), float(m.group(2))) for m in re.finditer(
    r"conduit_chat_stage_duration_seconds_bucket\{stage=\"prompt\",phase=\"prepare\",le=\"([\d.e+-]+|\+Inf)\"\} ([\d.]+)", sys.stdin.read()) if m.group(1) != "+Inf")
if not buckets: print("prompt_stage_p50_ms=na prompt_stage_p99_ms=na"); sys.exit()
total = buckets[-1][1]
at = lambda q: next((f"{le * 1000:g}" for le, n in buckets if n >= q * total), "inf")
print(f"prompt_stage_p50_ms={at(0.5)} prompt_stage_p99_ms={at(0.99)}")')
say "prompt stage (its histogram's bucket bounds): $stage"

say "reading the registry through the gateway ($CONNECTIONS connections, $DURATION)…"
cat >"$DIR/read.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency -s "$DIR/read.lua" \
    "http://127.0.0.1:$GATEWAY_PORT/v1/prompts/bench/support?label=production" >"$DIR/read.txt"
registry=$(python3 - "$DIR/read.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
if re.search(r"Non-2xx or 3xx responses: (\d+)", text): sys.exit("bench-prompts: registry reads failed: " + text)
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
pct = {int(p): float(v) * unit[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\b", text, re.M)}
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"registry_p50_ms={pct[50]:.3f} registry_p99_ms={pct[99]:.3f} registry_reads_per_s={rate:.0f}")
PY
)
say "$registry"

say "simulating experiments…"
stats=$("$BIN/bench-prompts-stats" 1000)
say "$stats"
chat=$(cat "$DIR/chat.txt")
pick() { tr ' ' '\n' <<<"$1" | grep "^$2=" | cut -d= -f2; }
echo "bench-prompts: prompt_added_p50_ms=$(pick "$chat" prompt_added_p50_ms) prompt_added_p99_ms=$(pick "$chat" prompt_added_p99_ms)" \
     "registry_p99_ms=$(pick "$registry" registry_p99_ms) ab_power_100=$(pick "$stats" ab_power_100) aa_false_positive=$(pick "$stats" aa_false_positive)" \
     "prompt_p99_ms=$(pick "$chat" prompt_p99_ms) plain_p99_ms=$(pick "$chat" plain_p99_ms) registry_p50_ms=$(pick "$registry" registry_p50_ms)" \
     "registry_reads_per_s=$(pick "$registry" registry_reads_per_s) prompt_stage_p99_ms=$(pick "$stage" prompt_stage_p99_ms)" \
     "render_p99_us=$(pick "$stats" render_p99_us) pairs=$PAIRS"
