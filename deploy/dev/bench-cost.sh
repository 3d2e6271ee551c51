#!/usr/bin/env bash
# make bench-cost: what budget enforcement adds to a chat request, and the ledger consumer's
# rate, on the stack as deployed (release builds of gateway, orchestrator and cost-service; the
# test-profile servers on bench ports; an instant upstream that reports usage).
#   - budget_added_p50_ms / _p99_ms: PAIRS (2000) pairs of requests through the gateway, one at
#     a time on a kept-alive connection per tenant, alternating: one tenant with three budgets
#     that apply (tenant, key, model), one with none; added is the first's percentile minus the
#     second's (the reserve in Redis; the settle runs after the response; the definitions cached).
#     One request in flight at a time, so that the figure is what a request pays, not how a
#     saturated two-core machine queues. Before it, two wrk runs at once (one connection each,
#     CONNECTIONS=2) show the throughput with and without budgets when the machine is saturated.
#   - overspend_usd / max_request_usd: 200 concurrent requests against a budget worth 50.
#   - ledger_events_per_s: 10,000 usage events produced at once to the cost-service's topic,
#     until all are rows in the ledger.
#   - routing_accuracy / routing_cost_saved: the `auto` router of deploy/models.yaml over the
#     labelled set deploy/routing/labelled-prompts.jsonl (bench-routing): accuracy on its held-out
#     `test` half, and the cost saved against always choosing the premium candidate (GPT-4o).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/cost"
DURATION=${DURATION:-10s}
PAIRS=${PAIRS:-2000}
CONNECTIONS=${CONNECTIONS:-2}
PG_PORT=55732 REDIS_PORT=56779 KAFKA_PORT=59492
UPSTREAM_PORT=19090 GATEWAY_PORT=19080 ORCHESTRATOR_PORT=19081 COST_PORT=19084
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
bench_need_wrk
say "building gateway, orchestrator, cost-service and the upstream (release)…"
BIN=$("$STACK" release-build gateway orchestrator cost-service bench-gateway-upstream bench-routing)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"

# The upstream reports 12 prompt and 9 completion tokens; $10 / $20 per million tokens.
bench_priced_upstream "$BIN" "$UPSTREAM_PORT"
KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
INTERNAL_KEY="bench-internal-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
USAGE_TOPIC=conduit.usage
common=(LD_LIBRARY_PATH="$("$STACK" env test | sed -n 's/^LD_LIBRARY_PATH=//p')" CONDUIT_INTERNAL_KEY="$INTERNAL_KEY"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT CONDUIT_COST_SERVICE_URL=http://127.0.0.1:$COST_PORT
        CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=7000)
env "${common[@]}" CONDUIT_COST_SERVICE_PORT=$COST_PORT "$BIN/cost-service" >"$DIR/cost-service.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" CONDUIT_CACHE_ENABLED=false \
    "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$GATEWAY_PORT CONDUIT_ADMIN_KEY="$KEY" CONDUIT_ADMIN_TENANT=bench \
    "$BIN/gateway" >"$DIR/gateway.log" 2>&1 & PIDS+=($!)
bench_wait_http "http://127.0.0.1:$UPSTREAM_PORT/"
bench_wait_http "http://127.0.0.1:$COST_PORT/readyz"
bench_wait_http "http://127.0.0.1:$ORCHESTRATOR_PORT/readyz"
until curl -sf "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null; do sleep 0.3; done

api() {  # METHOD PATH [BODY]
    curl -s -X "$1" "http://127.0.0.1:$GATEWAY_PORT$2" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
BODY='{"model":"bench","messages":[{"role":"user","content":"Hello, who are you?"}],"max_tokens":32}'
answer=$(api POST /v1/chat/completions "$BODY")
grep -q '"Hello! How can I help you today?"' <<<"$answer" || { say "bench-cost: the gateway answered: $answer"; exit 1; }

# Two more tenants, each with a key of its own (the gateway's table, as an operator adds them
# until the admin API does): `free` has no budget, `tight` gets one for the overspend run.
FREE_KEY="sk-free-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
TIGHT_KEY="sk-tight-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
for pair in "free:$FREE_KEY" "tight:$TIGHT_KEY"; do
    tenant=${pair%%:*} secret=${pair#*:}
    hash=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
    psql -h 127.0.0.1 -p "$PG_PORT" -U conduit -d conduit -qc "
        INSERT INTO gateway.tenants (id, name) VALUES ('$tenant', '$tenant');
        INSERT INTO gateway.api_keys (id, tenant_id, key_hash, roles) VALUES ('$tenant-key', '$tenant', decode('$hash', 'hex'), '{admin}');" >/dev/null
done

ids=()
for budget in '{"scope":{"tenant":true},"period":"month","limit_usd":1000000}' \
              '{"scope":{"key_id":"admin-bench"},"period":"day","limit_usd":1000000}' \
              '{"scope":{"tenant":true},"model":"bench","period":"week","limit_usd":1000000}'; do
    created=$(api POST /v1/budgets "$budget")
    id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created") || { say "bench-cost: no budget: $created"; exit 1; }
    ids+=("$id")
done
for who in bench free; do
    secret=$KEY; [ "$who" = free ] && secret=$FREE_KEY
    cat >"$DIR/$who.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $secret"
LUA
done
# Both at once, so that they share the machine: the same requests, one tenant with three budgets
# that apply, one with none.
half=$((CONNECTIONS / 2 > 0 ? CONNECTIONS / 2 : 1))
URL="http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions"
say "saturating the gateway (2 × $half connections, $DURATION)…"
warm=()
for who in bench free; do wrk -t1 -c"$half" -d3s --timeout 30s -s "$DIR/$who.lua" "$URL" >/dev/null & warm+=($!); done
wait "${warm[@]}"
wrk -t1 -c"$half" -d"$DURATION" --timeout 30s --latency -s "$DIR/bench.lua" "$URL" >"$DIR/three.txt" & W1=$!
wrk -t1 -c"$half" -d"$DURATION" --timeout 30s --latency -s "$DIR/free.lua" "$URL" >"$DIR/none.txt" & W2=$!
wait $W1 $W2
# The orchestrator's own account of the budget stage (reserve before the call, settle after).
curl -s "http://127.0.0.1:$ORCHESTRATOR_PORT/metrics" | grep '^conduit_chat_stage_duration_seconds_bucket{stage="budget"' >"$DIR/stages.txt" || true

say "classifying the labelled set…"
"$BIN/bench-routing" "$ROOT/deploy/models.yaml" "$ROOT/deploy/routing/labelled-prompts.jsonl" >"$DIR/routing.txt"
say "$(cat "$DIR/routing.txt")"

say "measuring budget enforcement ($PAIRS pairs of requests, one at a time)…"
python3 - "$DIR" "$TIGHT_KEY" "$GATEWAY_PORT" "$KAFKA_PORT" "$PG_PORT" "$USAGE_TOPIC" "$KEY" "$FREE_KEY" "$PAIRS" <<'PY'
import concurrent.futures, http.client, json, re, subprocess, sys, time, urllib.request, uuid
directory, key, gateway, kafka, pg, topic, budgeted_key, free_key, pairs = sys.argv[1:10]
routing = dict(pair.split("=", 1) for pair in open(f"{directory}/routing.txt").read().split()[1:])
base = f"http://127.0.0.1:{gateway}"
def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")

def parse(name):
    text = open(f"{directory}/{name}.txt").read()
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {int(p): float(v) * unit[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\b", text, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad: sys.exit(f"bench-cost: {name}: {bad.group(1)} failed requests")
    return pct[50], pct[99], float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
saturated_none, saturated_three = parse("none"), parse("three")

# One request at a time, alternating tenants (and which goes first), each on its own connection.
chat = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Hello, who are you?"}], "max_tokens": 32})
connections = {who: http.client.HTTPConnection("127.0.0.1", int(gateway), timeout=30) for who in ("three", "none")}
secrets = {"three": budgeted_key, "none": free_key}
latencies = {"three": [], "none": []}
for index in range(int(pairs)):
    for who in (("three", "none") if index % 2 == 0 else ("none", "three")):
        started = time.perf_counter()
        connections[who].request("POST", "/v1/chat/completions", body=chat,
                                 headers={"Authorization": f"Bearer {secrets[who]}", "Content-Type": "application/json"})
        response = connections[who].getresponse()
        response.read()
        latencies[who].append((time.perf_counter() - started) * 1000)
        if response.status != 200: sys.exit(f"bench-cost: a paired request answered {response.status}")
def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
none = (percentile(latencies["none"], 0.5), percentile(latencies["none"], 0.99))
three = (percentile(latencies["three"], 0.5), percentile(latencies["three"], 0.99))

def stage_quantiles(phase):
    """p50 / p99 (ms, the bucket's upper bound) of the budget stage's phase, from its histogram."""
    buckets = sorted((float(m.group(1)), float(m.group(2))) for m in re.finditer(
        r'phase="%s"[^}]*le="([\d.e+-]+)"\} ([\d.]+)' % phase, open(f"{directory}/stages.txt").read()))
    if not buckets: return "na", "na"
    total = buckets[-1][1]
    def at(q): return next((f"{le * 1000:g}" for le, n in buckets if n >= q * total), "inf")
    return at(0.5), at(0.99)

# 200 at once against a budget worth 50 answers (12 + 9 tokens: $0.0003 each).
answer_cost = (12 * 10 + 9 * 20) / 1e6
body = {"model": "bench", "messages": [{"role": "user", "content": "Hello, who are you?"}], "max_tokens": 32}
# "Hello, who are you?" is 19 bytes: 7 tokens by the stage's estimate, plus 8 for the message.
max_request = ((7 + 8) * 10 + 32 * 20) / 1e6
status, budget = call("POST", "/v1/budgets", {"scope": {"tenant": True}, "period": "total", "limit_usd": 50 * answer_cost})
assert status == 201, budget
time.sleep(1.5)
with concurrent.futures.ThreadPoolExecutor(200) as pool:
    outcomes = list(pool.map(lambda _: call("POST", "/v1/chat/completions", body), range(200)))
served = sum(1 for status, _ in outcomes if status == 200)
refused = [answer for status, answer in outcomes if status != 200]
assert all(answer.get("error", {}).get("type") == "budget_exceeded" for answer in refused), refused[:3]
status, view = call("GET", f"/v1/budgets/{budget['id']}")
overspend = max(0.0, view["spent_usd"] - view["limit_usd"])

# The ledger: 10,000 events at once on the usage topic the cost-service consumes, once it has
# caught up with the requests above.
from confluent_kafka import Producer
producer = Producer({"bootstrap.servers": f"127.0.0.1:{kafka}", "linger.ms": 20})
tenant = "ledger-" + uuid.uuid4().hex[:8]
def count(where=f"tenant_id = '{tenant}'"):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", pg, "-U", "conduit", "-d", "conduit", "-Atc",
                          f"SELECT count(*) FROM cost.usage_ledger WHERE {where}"], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)
previous = -1
while (current := count("true")) != previous:
    previous = current
    time.sleep(2)
started = time.monotonic()
for index in range(10_000):
    event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "request_id": f"r{index}", "tenant": tenant, "key_id": "k",
             "kind": "chat", "model": "bench", "prompt_tokens": 12, "completion_tokens": 9, "cost_usd": answer_cost,
             "status": "ok", "timestamp": "2026-12-01T12:00:00Z"}
    producer.produce(topic, key=event["request_id"], value=json.dumps(event))
    if index % 1000 == 0: producer.poll(0)
producer.flush(30)
while count() < 10_000:
    if time.monotonic() - started > 600: sys.exit("bench-cost: the ledger did not take 10,000 events in 10 minutes")
    time.sleep(0.5)
rate = 10_000 / (time.monotonic() - started)
print(f"budgets, one request at a time: none p50={none[0]:.3f}ms p99={none[1]:.3f}ms; three p50={three[0]:.3f}ms p99={three[1]:.3f}ms", file=sys.stderr)
print(f"budgets, saturated (wrk, 2 connections): none {saturated_none[2]:.0f} req/s p99={saturated_none[1]:.3f}ms; "
      f"three {saturated_three[2]:.0f} req/s p99={saturated_three[1]:.3f}ms", file=sys.stderr)
for phase in ("prepare", "finish"):
    p50, p99 = stage_quantiles(phase)
    print(f"budget stage {phase} (orchestrator histogram, bucket bounds): p50<={p50}ms p99<={p99}ms", file=sys.stderr)
print(f"200 concurrent against a budget worth 50: {served} served, {len(refused)} refused, spent ${view['spent_usd']:.6f} of ${view['limit_usd']:.6f}", file=sys.stderr)
print(f"bench-cost: budget_added_p50_ms={three[0] - none[0]:.3f} budget_added_p99_ms={three[1] - none[1]:.3f} "
      f"ledger_events_per_s={rate:.0f} overspend_usd={overspend:.6f} max_request_usd={max_request:.6f} "
      f"routing_accuracy={routing['accuracy']} routing_cost_saved={routing['cost_saved']}")
PY
