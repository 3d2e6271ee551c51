#!/usr/bin/env bash
# make bench-retriever (first cut, for the retriever issue): our HNSW beside hnswlib on the same
# random unit vectors, same M / efConstruction / efSearch, one thread each, same run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="$ROOT/.stack/bench/retriever"
COUNT=${COUNT:-20000}
QUERIES=${QUERIES:-1000}
DIMENSION=${DIMENSION:-384}
mkdir -p "$DIR"
python3 -c 'import hnswlib, numpy' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check hnswlib numpy >/dev/null
echo "building bench-retriever (release)…" >&2
swift build --package-path "$ROOT" -c release --product bench-retriever -q 2>&1 | grep -v "^warning:" >&2 || true
BENCH="$(swift build --package-path "$ROOT" -c release --show-bin-path)/bench-retriever"

anchor=$(python3 - "$DIR" "$COUNT" "$QUERIES" "$DIMENSION" <<'PY'
import sys, time, numpy as np, hnswlib
directory, count, queries, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(42)
def unit(n):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
data, query = unit(count), unit(queries)
truth = np.argsort(-(query @ data.T), axis=1)[:, :10].astype(np.int32)
data.tofile(f"{directory}/data.f32"); query.tofile(f"{directory}/queries.f32"); truth.tofile(f"{directory}/truth.i32")
index = hnswlib.Index(space="ip", dim=dim)
index.set_num_threads(1)
index.init_index(max_elements=count, M=16, ef_construction=200)
start = time.perf_counter(); index.add_items(data, np.arange(count)); build = time.perf_counter() - start
index.set_ef(64)
start = time.perf_counter()
labels = [index.knn_query(q, k=10)[0][0] for q in query]
qps = queries / (time.perf_counter() - start)
recall = np.mean([len(set(l) & set(t)) / 10 for l, t in zip(labels, truth)])
print(f"{build:.3f} {int(qps)} {recall:.4f}")
PY
)
read -r anchor_build anchor_qps anchor_recall <<<"$anchor"
ours=$("$BENCH" --data "$DIR/data.f32" --queries "$DIR/queries.f32" --truth "$DIR/truth.i32" --dimension "$DIMENSION")
ours_build=$(echo "$ours" | awk '/^build_seconds/ {print $2}')
ours_qps=$(echo "$ours" | awk '/^qps/ {print $2}')
ours_recall=$(echo "$ours" | awk '/^recall/ {print $2}')
echo "  build: conduit ${ours_build}s, hnswlib ${anchor_build}s; qps: conduit $ours_qps, hnswlib $anchor_qps; recall@10: conduit $ours_recall, hnswlib $anchor_recall" >&2
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "bench-retriever: ratio_qps=$(ratio "$ours_qps" "$anchor_qps") ratio_build=$(ratio "$anchor_build" "$ours_build") recall=$ours_recall anchor_recall=$anchor_recall qps=$ours_qps anchor_qps=$anchor_qps"
