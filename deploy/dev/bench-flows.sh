#!/usr/bin/env bash
# make bench-flows: what the flow engine adds, and what a parallel group saves. Release builds
# of the gateway (ungoverned: no key, no limits, so only the flow path differs) and the
# orchestrator, the test-profile servers on bench ports, two local upstreams: an instant one and
# one answering after SLOW_MS (200).
#   - run_overhead_p50_ms / _p99_ms: RUNS (1000) one-step flows (one chat call to the instant
#     model) minus as many direct chat requests, alternated one at a time: the whole flow path
#     (inputs checked, the run record, the step, the output, Postgres) around one model call.
#   - step_overhead_p50_ms / _p99_ms: a flow of 11 chained `transform` steps minus one of 1,
#     divided by 10: one more step's cost.
#   - parallel_speedup: 3 chat steps to the slow model one after another over the same 3 in one
#     parallel group (medians of PARALLEL_RUNS, 20; 3 is ideal).
#   - pdf_docs_per_min: PDF_RUNS (100) runs of a one-step `extract` flow on a 10-page PDF
#     (one text block per page), one at a time: documents a minute, the whole run included.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/flows"
RUNS=${RUNS:-1000}
PARALLEL_RUNS=${PARALLEL_RUNS:-20}
PDF_RUNS=${PDF_RUNS:-100}
SLOW_MS=${SLOW_MS:-200}
PG_PORT=56132 REDIS_PORT=57179 KAFKA_PORT=59892
FAST_PORT=19390 SLOW_PORT=19391 GATEWAY_PORT=19380 ORCHESTRATOR_PORT=19381
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
say "building the gateway, the orchestrator and the upstream (release)…"
BIN=$("$STACK" release-build gateway orchestrator bench-gateway-upstream)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"
"$BIN/bench-gateway-upstream" "$FAST_PORT" >"$DIR/upstream-fast.log" 2>&1 & PIDS+=($!)
"$BIN/bench-gateway-upstream" "$SLOW_PORT" "$SLOW_MS" >"$DIR/upstream-slow.log" 2>&1 & PIDS+=($!)
cat >"$DIR/models.yaml" <<YAML
models:
  - name: bench
    deployments:
      - {id: bench-fast, provider: openai, model: bench, base_url: "http://127.0.0.1:$FAST_PORT/v1", context_window: 4096, price_per_million: {input: 1, output: 2}}
  - name: slow
    deployments:
      - {id: bench-slow, provider: openai, model: bench, base_url: "http://127.0.0.1:$SLOW_PORT/v1", context_window: 4096, price_per_million: {input: 1, output: 2}}
YAML
mkdir -p "$DIR/flows"
INTERNAL_KEY="bench-internal-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
mapfile -t base < <("$STACK" env test | grep -E '^(LD_LIBRARY_PATH|CONDUIT_MINILM_DIR|OPENBLAS_CORETYPE)=')
common=("${base[@]}" CONDUIT_INTERNAL_KEY="$INTERNAL_KEY"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT CONDUIT_COST_SERVICE_URL=http://127.0.0.1:9 CONDUIT_BUDGET_UNAVAILABLE=allow
        CONDUIT_LOG_LEVEL=warning CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=10000)
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" CONDUIT_CACHE_ENABLED=false \
    CONDUIT_FLOWS_DIR="$DIR/flows" "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$GATEWAY_PORT CONDUIT_ADMIN_TENANT=bench CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1 \
    CONDUIT_GATEWAY_AUDIT_GROUP=bench-flows-audit "$BIN/gateway" >"$DIR/gateway.log" 2>&1 & PIDS+=($!)
bench_wait_http "http://127.0.0.1:$FAST_PORT/"
bench_wait_http "http://127.0.0.1:$SLOW_PORT/"
for port in $ORCHESTRATOR_PORT $GATEWAY_PORT; do bench_wait_http "http://127.0.0.1:$port/readyz"; done

say "measuring the flow engine ($RUNS runs each way, one at a time; $PARALLEL_RUNS parallel-group runs each way)…"
python3 - "$GATEWAY_PORT" "$RUNS" "$PARALLEL_RUNS" "$PDF_RUNS" <<'PY'
import base64, http.client, json, statistics, sys, time
port, runs, parallel_runs, pdf_runs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def post(path, body, content_type="application/json"):
    started = time.perf_counter()
    connection.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = connection.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status not in (200, 201): sys.exit(f"bench-flows: {path} answered {response.status}: {data[:300]!r}")
    return elapsed, json.loads(data)
def upload(yaml):
    for _ in range(60):
        connection.request("POST", "/v1/flows", body=yaml, headers={"Content-Type": "application/yaml"})
        response = connection.getresponse(); data = response.read()
        if response.status == 201: return
        if response.status != 503: sys.exit(f"bench-flows: upload answered {response.status}: {data[:300]!r}")
        time.sleep(0.5)  # the flows' schema is still migrating
    sys.exit("bench-flows: flows never became available")
chat_step = '{name: ask, executor: chat, config: {model: bench, max_tokens: 32, messages: [{role: user, content: "Hello, who are you?"}]}}'
upload("name: one\nsteps:\n  - " + chat_step + "\noutput: '{{ steps.ask.output.content }}'\n")
upload("name: t1\nsteps:\n  - {name: s0, executor: transform, config: {value: 0}}\n")
chain = "\n".join(["  - {name: s0, executor: transform, config: {value: 0}}"] +
                  [f"  - {{name: s{i}, executor: transform, depends_on: s{i-1}, config: {{value: \"{{{{ steps.s{i-1}.output }}}}\"}}}}" for i in range(1, 11)])
upload("name: t11\nsteps:\n" + chain + "\n")
slow = lambda name, extra: f"  - {{name: {name}, executor: chat, {extra}config: {{model: slow, max_tokens: 8, messages: [{{role: user, content: {name}}}]}}}}"
upload("name: fanout\nsteps:\n" + "\n".join(slow(n, "parallel_group: all, ") for n in ["a", "b", "c"]) + "\n")
upload("name: chain\nsteps:\n" + slow("a", "") + "\n" + slow("b", "depends_on: a, ") + "\n" + slow("c", "depends_on: b, ") + "\n")
upload("name: pdf\ninputs: {content: string}\nsteps:\n  - {name: read, executor: extract, config: {content: '{{ inputs.content }}', content_type: application/pdf}}\n"
       "output: '{{ steps.read.output.characters }}'\n")

def make_pdf(pages):
    """A valid PDF, one block of Helvetica text per page (what tests/TestSupport/MiniPDF writes)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join("%d 0 R" % (4 + 2 * i) for i in range(len(pages))), len(pages)),
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for index, lines in enumerate(pages):
        content = "BT /F1 10 Tf 40 760 Td 12 TL " + " ".join("(%s) '" % line for line in lines) + " ET"
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * index))
        objects.append("<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    out, offsets = "%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out)); out += "%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += "xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + "".join("%010d 00000 n \n" % o for o in offsets)
    out += "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out.encode()
sentence = "Conduit routes, caches and bills model calls; this line pads a page of a benchmark document."
document = base64.b64encode(make_pdf([[f"Page {page} line {line}: {sentence}" for line in range(50)] for page in range(1, 11)])).decode()

chat = json.dumps({"model": "bench", "max_tokens": 32, "messages": [{"role": "user", "content": "Hello, who are you?"}]})
empty = json.dumps({"inputs": {}})
def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
times = {"direct": [], "one": [], "t1": [], "t11": []}
for index in range(runs + 100):
    order = [("direct", "/v1/chat/completions", chat), ("one", "/v1/flows/one/runs", empty), ("t1", "/v1/flows/t1/runs", empty), ("t11", "/v1/flows/t11/runs", empty)]
    if index % 2: order.reverse()
    for who, path, body in order:
        elapsed, answer = post(path, body)
        if who != "direct" and answer.get("status") != "succeeded": sys.exit(f"bench-flows: a {who} run ended {answer.get('status')}: {answer.get('error')}")
        if index >= 100: times[who].append(elapsed)
p = {who: (percentile(values, 0.5), percentile(values, 0.99)) for who, values in times.items()}
fan, seq = [], []
for _ in range(parallel_runs):
    fan.append(post("/v1/flows/fanout/runs", empty)[0])
    seq.append(post("/v1/flows/chain/runs", empty)[0])
speedup = statistics.median(seq) / statistics.median(fan)
pdf_body = json.dumps({"inputs": {"content": document}})
_, first = post("/v1/flows/pdf/runs", pdf_body)
if first.get("status") != "succeeded" or int(first.get("output") or 0) < 40000: sys.exit(f"bench-flows: the PDF was not read: {first}")
started = time.perf_counter()
for _ in range(pdf_runs): post("/v1/flows/pdf/runs", pdf_body)
pdf_per_minute = pdf_runs / ((time.perf_counter() - started) / 60)
print(f"direct chat p50 {p['direct'][0]:.3f} ms p99 {p['direct'][1]:.3f}; one-step flow p50 {p['one'][0]:.3f} p99 {p['one'][1]:.3f}; "
      f"1 transform p50 {p['t1'][0]:.3f}, 11 chained p50 {p['t11'][0]:.3f}; 3 slow steps chained {statistics.median(seq):.1f} ms, grouped {statistics.median(fan):.1f} ms",
      file=sys.stderr)
print(f"bench-flows: step_overhead_p50_ms={(p['t11'][0] - p['t1'][0]) / 10:.3f} step_overhead_p99_ms={(p['t11'][1] - p['t1'][1]) / 10:.3f} "
      f"parallel_speedup={speedup:.2f} pdf_docs_per_min={pdf_per_minute:.0f} run_overhead_p50_ms={p['one'][0] - p['direct'][0]:.3f} "
      f"run_overhead_p99_ms={p['one'][1] - p['direct'][1]:.3f} direct_p50_ms={p['direct'][0]:.3f} flow_p50_ms={p['one'][0]:.3f} "
      f"chained_ms={statistics.median(seq):.1f} grouped_ms={statistics.median(fan):.1f} pdf_pages=10 pdf_characters={first['output']} runs={len(times['one'])}")
PY
