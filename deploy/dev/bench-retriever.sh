#!/usr/bin/env bash
# make bench-retriever: the retriever engine beside hnswlib and faiss-cpu (HNSW-Flat) in one run,
# on the same clustered vectors, M=16, efConstruction=200, one thread each. For every library
# it sweeps efSearch (best of 5 passes each) and reports queries/s at the smallest efSearch reaching recall@10 >= 0.95
# and >= 0.99 against brute force; build time; memory; and BM25 / hybrid latency at the same
# number of chunks. The anchors live in their own virtualenv (.stack/bench-retriever-venv).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="$ROOT/.stack/bench/retriever"
COUNT=${COUNT:-100000}
QUERIES=${QUERIES:-1000}
DIMENSION=${DIMENSION:-384}
EFS=${EFS:-10,16,24,32,48,64,96,128,192,256,384,512}
VENV="$ROOT/.stack/bench-retriever-venv"
mkdir -p "$DIR"
if ! "$VENV/bin/python" -c 'import hnswlib, faiss, numpy' 2>/dev/null; then
  echo "installing hnswlib, faiss-cpu and numpy into $VENV…" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check hnswlib faiss-cpu numpy >&2
fi
echo "building bench-retriever (release)…" >&2
swift build --package-path "$ROOT" -c release --product bench-retriever -q 2>&1 | grep -v "^warning:" >&2 || true
BENCH="$(swift build --package-path "$ROOT" -c release --show-bin-path)/bench-retriever"

echo "generating $COUNT vectors in 1000 clusters, $QUERIES queries, exact top-10, texts…" >&2
"$VENV/bin/python" - "$DIR" "$COUNT" "$QUERIES" "$DIMENSION" <<'PY'
import sys, numpy as np
directory, count, queries, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def clustered(rng, centres, n):
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
rng = np.random.default_rng(44)
centres = rng.standard_normal((1000, dim)).astype(np.float32)
centres /= np.linalg.norm(centres, axis=1, keepdims=True)
data = clustered(rng, centres, count)
query = clustered(np.random.default_rng(4401), centres, queries)
truth = np.concatenate([np.argsort(-(query[i:i + 100] @ data.T), axis=1)[:, :10] for i in range(0, queries, 100)]).astype(np.int32)
data.tofile(f"{directory}/data.f32"); query.tofile(f"{directory}/queries.f32"); truth.tofile(f"{directory}/truth.i32")
# Texts: words from a Zipf-distributed vocabulary of 30,000 made-up words, 60-140 words each.
words = rng.integers(0, 26, (30000, 7))
vocabulary = ["".join(chr(97 + c) for c in w[: 3 + i % 5]) + str(i % 97) for i, w in enumerate(words)]
ranks = np.minimum(rng.zipf(1.2, size=count * 100) - 1, len(vocabulary) - 1)
with open(f"{directory}/texts.txt", "w") as out:
    position = 0
    for length in rng.integers(60, 140, count):
        out.write(" ".join(vocabulary[r] for r in ranks[position:position + length]) + "\n")
        position = (position + length) % (len(ranks) - 200)
with open(f"{directory}/text_queries.txt", "w") as out:
    for _ in range(queries):
        out.write(" ".join(vocabulary[r] for r in rng.integers(5, 3000, rng.integers(2, 5))) + "\n")
PY

echo "running hnswlib and faiss…" >&2
anchors=$("$VENV/bin/python" - "$DIR" "$COUNT" "$QUERIES" "$DIMENSION" "$EFS" <<'PY'
import sys, time, numpy as np, hnswlib, faiss
directory, count, queries, dim, efs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), [int(e) for e in sys.argv[5].split(",")]
data = np.fromfile(f"{directory}/data.f32", dtype=np.float32).reshape(count, dim)
query = np.fromfile(f"{directory}/queries.f32", dtype=np.float32).reshape(queries, dim)
truth = np.fromfile(f"{directory}/truth.i32", dtype=np.int32).reshape(queries, 10)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
def recall(labels):
    return float(np.mean([len(set(l) & set(t)) / 10 for l, t in zip(labels, truth)]))
faiss.omp_set_num_threads(1)
before = rss(); start = time.perf_counter()
index = hnswlib.Index(space="ip", dim=dim); index.set_num_threads(1)
index.init_index(max_elements=count, M=16, ef_construction=200)
index.add_items(data, np.arange(count))
print(f"hnswlib build_seconds {time.perf_counter() - start} memory_bytes {rss() - before}")
def best(run):  # best of 5 passes, as for ours
    fastest = None
    for _ in range(5):
        start = time.perf_counter(); labels = run(); elapsed = time.perf_counter() - start
        fastest = elapsed if fastest is None else min(fastest, elapsed)
    return int(queries / fastest), labels
for ef in efs:
    index.set_ef(ef)
    qps, labels = best(lambda: index.knn_query(query, k=10)[0])
    print(f"hnswlib ef {ef} qps {qps} recall {recall(labels)}")
del index
before = rss(); start = time.perf_counter()
index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
index.hnsw.efConstruction = 200
index.add(data)
print(f"faiss build_seconds {time.perf_counter() - start} memory_bytes {rss() - before}")
for ef in efs:
    index.hnsw.efSearch = ef
    qps, labels = best(lambda: index.search(query, 10)[1])
    print(f"faiss ef {ef} qps {qps} recall {recall(labels)}")
PY
)
echo "running conduit…" >&2
run_ours() {
  "$BENCH" --data "$DIR/data.f32" --queries "$DIR/queries.f32" --truth "$DIR/truth.i32" --dimension "$DIMENSION" \
    --efs "$EFS" --texts "$DIR/texts.txt" --text-queries "$DIR/text_queries.txt" --quantization "$1"
}
ours="$(run_ours none)
$(run_ours int8)"
echo "$anchors" >&2
echo "$ours" >&2


# --- The service: hybrid queries over HTTP against the same chunks, loaded from Postgres.
STACK="$ROOT/deploy/dev/stack.sh"
PG_PORT=55632
KAFKA_PORT=59392
SERVICE_PORT=18583
"$STACK" install >&2
export LD_LIBRARY_PATH="$("$STACK" env dev | sed -n 's/^LD_LIBRARY_PATH=//p')"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT" >&2
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT" >&2
RETRIEVER_PID=
stop_all() {
  [ -z "$RETRIEVER_PID" ] || kill "$RETRIEVER_PID" 2>/dev/null || true
  "$STACK" stop-kafka "$DIR/kafka" >/dev/null 2>&1 || true
  "$STACK" stop-postgres "$DIR/postgres" >/dev/null 2>&1 || true
}
trap stop_all EXIT
echo "building retriever (release)…" >&2
swift build --package-path "$ROOT" -c release --product retriever -q 2>&1 | grep -v "^warning:" >&2 || true
RETRIEVER="$(swift build --package-path "$ROOT" -c release --show-bin-path)/retriever"
rm -rf "$DIR/snapshots"
start_retriever() {  # sets READY_SECONDS
  local started=$SECONDS
  env CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT CONDUIT_RETRIEVER_PORT=$SERVICE_PORT \
    CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=10000 CONDUIT_RETRIEVER_SNAPSHOT_DIR="$DIR/snapshots" CONDUIT_LOG_LEVEL=warning \
    "$RETRIEVER" >>"$DIR/retriever.log" 2>&1 &
  RETRIEVER_PID=$!
  until curl -sf "127.0.0.1:$SERVICE_PORT/readyz" >/dev/null; do
    kill -0 "$RETRIEVER_PID" 2>/dev/null || { tail -20 "$DIR/retriever.log" >&2; exit 1; }
    sleep 0.5
  done
  READY_SECONDS=$((SECONDS - started))
}
stop_retriever() { kill -TERM "$RETRIEVER_PID"; wait "$RETRIEVER_PID" 2>/dev/null || true; RETRIEVER_PID=; }
start_retriever   # migrates the schema
stop_retriever
echo "loading $COUNT chunks into Postgres…" >&2
"$VENV/bin/python" - "$DIR" "$COUNT" "$DIMENSION" <<'PY'
import sys, numpy as np
directory, count, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = np.fromfile(f"{directory}/data.f32", dtype=np.float32).reshape(count, dim)
texts = open(f"{directory}/texts.txt").read().split("\n")
with open(f"{directory}/documents.csv", "w") as out:
    for i in range(count): out.write(f"bench,corpus,d{i},v1\n")
with open(f"{directory}/chunks.csv", "w") as out:
    for i in range(count):
        out.write(f'bench,corpus,d{i},d{i}#0,0,{texts[i]},0,{len(texts[i])},"{{""year"": {2000 + i % 25}}}",\\x{data[i].tobytes().hex()},h\n')
PY
PSQL=(psql -h 127.0.0.1 -p "$PG_PORT" -U conduit -d conduit -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "DELETE FROM retriever.collections WHERE tenant_id = 'bench'" \
  -c "INSERT INTO retriever.collections (tenant_id, name, configuration) VALUES ('bench', 'corpus', '{\"dimension\":$DIMENSION,\"vector\":{\"m\":16,\"efConstruction\":200,\"efSearch\":64,\"compactionRatio\":0.25,\"quantization\":\"none\"},\"keyword\":{\"k1\":1.2,\"b\":0.75}}')" \
  -c "\\copy retriever.documents (tenant_id, collection, doc_id, version) FROM '$DIR/documents.csv' CSV" \
  -c "\\copy retriever.chunks (tenant_id, collection, doc_id, chunk_id, chunk_index, text, start_offset, end_offset, metadata, vector, content_hash) FROM '$DIR/chunks.csv' CSV"
echo "starting the retriever on $COUNT chunks (index built from Postgres)…" >&2
start_retriever
load_cold=$READY_SECONDS
query_service() {
  "$VENV/bin/python" - "$DIR" "$COUNT" "$DIMENSION" "$SERVICE_PORT" <<'PY'
import sys, json, time, http.client, numpy as np
directory, count, dim, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
queries = np.fromfile(f"{directory}/queries.f32", dtype=np.float32).reshape(-1, dim)
texts = open(f"{directory}/text_queries.txt").read().split("\n")
connection = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Content-Type": "application/json", "X-Conduit-Tenant": "bench"}
def ask(i):
    body = json.dumps({"collection": "corpus", "vector": queries[i % len(queries)].tolist(), "query": texts[i % len(texts)], "top_k": 10})
    start = time.perf_counter()
    connection.request("POST", "/v1/search", body, headers)
    response = connection.getresponse(); payload = response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, payload[:200]
    assert len(json.loads(payload)["results"]) == 10
    return elapsed
for i in range(200): ask(i)
times = sorted(ask(i) for i in range(1000))
print(f"{times[500] * 1000:.3f} {times[990] * 1000:.3f}")
PY
}
read -r service_p50 service_p99 <<<"$(query_service)"
stop_retriever   # writes the snapshot on the way out
start_retriever
load_snapshot=$READY_SECONDS
stop_retriever
echo "service hybrid_ms $service_p50 $service_p99 load_seconds $load_cold load_from_snapshot_seconds $load_snapshot" >&2
ours="$ours
service hybrid_ms $service_p50 $service_p99 load_seconds $load_cold load_from_snapshot_seconds $load_snapshot"

python3 - "$COUNT" "$DIMENSION" <<PY
import sys
count, dim = int(sys.argv[1]), int(sys.argv[2])
lines = """$anchors
$ours""".splitlines()
build, memory, sweep, latency = {}, {}, {}, {}
for line in lines:
    f = line.split()
    if len(f) >= 5 and f[1] == "build_seconds":
        build[f[0]] = float(f[2]); memory[f[0]] = int(f[4]) if f[3] == "memory_bytes" else None
    elif len(f) == 7 and f[1] == "ef":
        sweep.setdefault(f[0], []).append((int(f[2]), int(f[4]), float(f[6])))
    elif f and f[0] in ("keyword_ms", "hybrid_ms"):
        latency[f[0]] = (float(f[1]), float(f[2]))
    elif f and f[0] == "service":
        latency["service"] = (float(f[2]), float(f[3])); loads = (f[5], f[7])
def at(name, target):
    for ef, qps, recall in sweep.get(name, []):
        if recall >= target: return ef, qps, recall
    return None
raw = count * dim * 4
print("", file=sys.stderr)
for name in ("hnswlib", "faiss", "fp32", "int8"):
    label = {"fp32": "conduit fp32", "int8": "conduit int8"}.get(name, name)
    parts = [f"{label:13} build {build.get(name, 0):6.1f}s"]
    if memory.get(name) is not None: parts.append(f"memory {memory[name] / raw:4.2f}x raw")
    for target in (0.95, 0.99):
        hit = at(name, target)
        parts.append(f"@{target}: " + (f"ef {hit[0]} {hit[1]} q/s (recall {hit[2]:.3f})" if hit else "not reached"))
    print("  " + " | ".join(parts), file=sys.stderr)
print(f"  engine, {count} chunks: BM25 top-10 p50/p99 {latency['keyword_ms'][0]:.2f}/{latency['keyword_ms'][1]:.2f} ms, hybrid p50/p99 {latency['hybrid_ms'][0]:.2f}/{latency['hybrid_ms'][1]:.2f} ms", file=sys.stderr)
print(f"  service over HTTP, {count} chunks: hybrid p50/p99 {latency['service'][0]:.2f}/{latency['service'][1]:.2f} ms; start-up {loads[0]} s from Postgres, {loads[1]} s from its snapshot", file=sys.stderr)
def ratio(name, target):
    ours, anchor = at(name, target), at("hnswlib", target)
    return f"{ours[1] / anchor[1]:.2f}" if ours and anchor else "na"
recall_fp32 = at("fp32", 0.95); recall_int8 = at("int8", 0.95)
print(f"bench-retriever: recall_fp32={recall_fp32[2] if recall_fp32 else 'na'} recall_int8={recall_int8[2] if recall_int8 else 'na'} "
      f"ratio_qps_fp32={ratio('fp32', 0.95)} ratio_qps_int8={ratio('int8', 0.95)} ratio_qps_fp32_99={ratio('fp32', 0.99)} "
      f"ratio_build={build['fp32'] / build['hnswlib']:.2f} ratio_memory={memory['fp32'] / raw:.2f} "
      f"ratio_memory_int8={memory['int8'] / raw:.2f} hybrid_p99_ms={latency['service'][1]:.2f} engine_hybrid_p99_ms={latency['hybrid_ms'][1]:.2f} keyword_p99_ms={latency['keyword_ms'][1]:.2f}")
PY
