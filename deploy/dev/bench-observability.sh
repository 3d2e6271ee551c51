#!/usr/bin/env bash
# make bench-observability: what tracing adds at the gateway, and how fast the metrics-exporter
# counts events. Release builds, the test-profile servers on bench ports, an instant upstream,
# rotel as the OTLP collector.
#   - tracing_added_p50_ms / tracing_added_p99_ms: PAIRS (3000) pairs of chat requests, one at a
#     time on a kept-alive connection to each of two gateways side by side — the same binary in
#     front of the same orchestrator, one exporting spans to the collector at
#     CONDUIT_TRACE_SAMPLE_RATIO=RATIO (0.1), one with tracing off — alternating which goes
#     first; added is the traced percentile minus the untraced one. Both run ungoverned
#     (CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1) so the difference is tracing's alone; traced_spans
#     is how many gateway spans reached the collector (about RATIO of the requests).
#     noise_p50_ms / noise_p99_ms: a third gateway, untraced like the second, in the same
#     rotation: the difference two identical gateways show on this machine (the A/A anchor).
#   - exporter_events_per_s: EVENTS (100000) usage events already on a topic, counted by a
#     metrics-exporter started on it: events over the seconds from its readiness to its
#     conduit_events_consumed_total reaching EVENTS (decoding, every llm_* metric, the commit).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/observability"
PAIRS=${PAIRS:-3000}
RATIO=${RATIO:-0.1}
EVENTS=${EVENTS:-100000}
PG_PORT=56032 REDIS_PORT=57079 KAFKA_PORT=59792
UPSTREAM_PORT=19290 TRACED_PORT=19280 PLAIN_PORT=19287 TWIN_PORT=19288 ORCHESTRATOR_PORT=19281 EXPORTER_PORT=19286 COLLECTOR_PORT=19218
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
ROTEL=$("$STACK" install-collector)
say "building the services and the upstream (release)…"
BIN=$("$STACK" release-build gateway orchestrator metrics-exporter bench-gateway-upstream)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"
bench_priced_upstream "$BIN" "$UPSTREAM_PORT"
"$ROTEL" start --otlp-http-endpoint 127.0.0.1:$COLLECTOR_PORT --otlp-grpc-endpoint 127.0.0.1:$((COLLECTOR_PORT - 1)) --exporter blackhole \
    --debug-log traces --debug-log-verbosity basic >"$DIR/collector.log" 2>&1 & PIDS+=($!)
INTERNAL_KEY="bench-internal-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
mapfile -t base < <("$STACK" env test | grep -E '^(LD_LIBRARY_PATH|CONDUIT_MINILM_DIR|OPENBLAS_CORETYPE)=')
common=("${base[@]}" CONDUIT_INTERNAL_KEY="$INTERNAL_KEY"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT CONDUIT_COST_SERVICE_URL=http://127.0.0.1:9 CONDUIT_BUDGET_UNAVAILABLE=allow
        CONDUIT_LOG_LEVEL=warning CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=10000)
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" CONDUIT_CACHE_ENABLED=false \
    "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$TRACED_PORT CONDUIT_ADMIN_TENANT=bench CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1 \
    CONDUIT_OTLP_ENDPOINT=http://127.0.0.1:$COLLECTOR_PORT CONDUIT_TRACE_SAMPLE_RATIO="$RATIO" CONDUIT_GATEWAY_AUDIT_GROUP=bench-traced-audit \
    "$BIN/gateway" >"$DIR/gateway-traced.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$PLAIN_PORT CONDUIT_ADMIN_TENANT=bench CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1 \
    CONDUIT_GATEWAY_AUDIT_GROUP=bench-plain-audit "$BIN/gateway" >"$DIR/gateway-plain.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$TWIN_PORT CONDUIT_ADMIN_TENANT=bench CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1 \
    CONDUIT_GATEWAY_AUDIT_GROUP=bench-twin-audit "$BIN/gateway" >"$DIR/gateway-twin.log" 2>&1 & PIDS+=($!)
bench_wait_http "http://127.0.0.1:$UPSTREAM_PORT/"
for port in $ORCHESTRATOR_PORT $TRACED_PORT $PLAIN_PORT $TWIN_PORT; do bench_wait_http "http://127.0.0.1:$port/readyz"; done

say "measuring tracing ($PAIRS pairs of requests, one at a time, sampling $RATIO)…"
python3 - "$TRACED_PORT" "$PLAIN_PORT" "$TWIN_PORT" "$PAIRS" >"$DIR/tracing.txt" <<'PY'
import http.client, json, sys, time
ports = {"traced": int(sys.argv[1]), "plain": int(sys.argv[2]), "twin": int(sys.argv[3])}
pairs = int(sys.argv[4])
chat = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Hello, who are you?"}], "max_tokens": 32})
connections = {who: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for who, port in ports.items()}
latencies = {who: [] for who in ports}
orders = [("traced", "plain", "twin"), ("plain", "twin", "traced"), ("twin", "traced", "plain")]
for index in range(pairs + 200):
    for who in orders[index % 3]:
        started = time.perf_counter()
        connections[who].request("POST", "/v1/chat/completions", body=chat, headers={"Content-Type": "application/json"})
        response = connections[who].getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200: sys.exit(f"bench-observability: a {who} request answered {response.status}")
        if index >= 200: latencies[who].append(elapsed)  # the first two hundred warm up
def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
p = {who: (percentile(values, 0.5), percentile(values, 0.99)) for who, values in latencies.items()}
print(f"{p['traced'][0] - p['plain'][0]:.3f} {p['traced'][1] - p['plain'][1]:.3f} {p['twin'][0] - p['plain'][0]:.3f} {p['twin'][1] - p['plain'][1]:.3f} "
      f"{p['traced'][0]:.3f} {p['traced'][1]:.3f} {p['plain'][0]:.3f} {p['plain'][1]:.3f} {len(latencies['plain'])}")
PY
read -r added50 added99 noise50 noise99 traced50 traced99 plain50 plain99 pairs <"$DIR/tracing.txt"
sleep 2  # the batch processor exports every second
span_lines=$(sed 's/\x1b\[[0-9;]*m//g' "$DIR/collector.log" | awk 'match($0, / spans=[0-9]+/) {n += substr($0, RSTART + 7, RLENGTH - 7)} END {print n + 0}')
say "traced p50 $traced50 ms p99 $traced99 ms; untraced p50 $plain50 ms p99 $plain99 ms; $span_lines spans at the collector"

say "measuring the exporter ($EVENTS usage events)…"
TOPIC="bench.usage.$(date +%s)"
python3 - "127.0.0.1:$KAFKA_PORT" "$TOPIC" "$EVENTS" <<'PY'
import json, sys, uuid
from datetime import datetime, timezone
from confluent_kafka import Producer
brokers, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
producer = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "compression.type": "lz4", "queue.buffering.max.messages": 200000})
now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
for index in range(count):
    event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "request_id": f"r{index}", "tenant": "bench", "key_id": f"key-{index % 500}",
             "user": f"user-{index}", "kind": "chat", "model": f"model-{index % 5}", "served_model": f"model-{index % 5}", "provider": "openai",
             "prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.0002, "cache_hit": index % 10 == 0, "latency_ms": 800 + index % 400,
             "ttft_ms": 120, "status": "ok" if index % 50 else "upstream_error", "timestamp": now, "selection_reason": "requested", "tier": "standard"}
    while True:
        try:
            producer.produce(topic, key=event["request_id"].encode(), value=json.dumps(event).encode())
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)
if producer.flush(60) != 0: sys.exit("bench-observability: events were not all delivered")
PY
env "${common[@]}" CONDUIT_METRICS_EXPORTER_PORT=$EXPORTER_PORT CONDUIT_METRICS_EXPORTER_USAGE_TOPIC="$TOPIC" \
    CONDUIT_METRICS_EXPORTER_GROUP="bench-exporter-$TOPIC" "$BIN/metrics-exporter" >"$DIR/metrics-exporter.log" 2>&1 & PIDS+=($!)
bench_wait_http "http://127.0.0.1:$EXPORTER_PORT/readyz"
rate=$(python3 - "$EXPORTER_PORT" "$TOPIC" "$EVENTS" <<'PY'
import re, sys, time, urllib.request
port, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
pattern = re.compile(r'^conduit_events_consumed_total\{topic="' + re.escape(topic) + r'"[^}]*\} (\S+)$', re.M)
while True:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    counted = sum(float(value) for value in pattern.findall(text))
    if counted >= count: break
    if time.perf_counter() - started > 300: sys.exit(f"bench-observability: the exporter counted {counted} of {count} in 300 s")
    time.sleep(0.05)
print(f"{count / (time.perf_counter() - started):.0f}")
PY
)
echo "bench-observability: tracing_added_p50_ms=$added50 tracing_added_p99_ms=$added99 exporter_events_per_s=$rate noise_p50_ms=$noise50 noise_p99_ms=$noise99 traced_p50_ms=$traced50 traced_p99_ms=$traced99 untraced_p50_ms=$plain50 untraced_p99_ms=$plain99 sample_ratio=$RATIO traced_spans=$span_lines pairs=$pairs events=$EVENTS"
