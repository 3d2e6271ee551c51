#!/usr/bin/env bash
# make bench-embedder: the native all-MiniLM-L6-v2 engine beside sentence-transformers (CPU
# torch) on the same 2,000 sentences of 40–60 words, same batch size (32), at 1 and 2 threads,
# in one run on this machine. sentence-transformers lives in its own virtualenv
# (.stack/bench-venv), installed on first use.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
DIR="$ROOT/.stack/bench"
VENV="$ROOT/.stack/bench-venv"
mkdir -p "$DIR"

"$STACK" install
eval "export $("$STACK" env dev | grep -E '^(CONDUIT_MINILM_DIR|OPENBLAS_CORETYPE)=' | tr '\n' ' ')"
MODEL=$CONDUIT_MINILM_DIR

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sentence_transformers, torch' 2>/dev/null; then
    echo "installing torch and sentence-transformers into $VENV (first run only)…" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check torch sentence-transformers >/dev/null
fi

# The same sentences every run: seeded words from the model's own vocabulary.
SENTENCES="$DIR/sentences.txt"
python3 - "$MODEL/vocab.txt" "$SENTENCES" <<'PY'
import random, sys
random.seed(7)
words = [w for w in open(sys.argv[1], encoding="utf-8").read().split("\n") if w.isalpha() and w.isascii() and len(w) > 2][:8000]
with open(sys.argv[2], "w") as out:
    for _ in range(2000):
        out.write(" ".join(random.choice(words) for _ in range(random.randint(40, 60))).capitalize() + ".\n")
PY

echo "building bench-embedder and embedder (release)…" >&2
for product in bench-embedder embedder; do
    swift build --package-path "$ROOT" -c release --product "$product" -q 2>&1 | grep -v "^warning:" >&2 || true
done
BIN="$(swift build --package-path "$ROOT" -c release --show-bin-path)"
BENCH="$BIN/bench-embedder"

reference() {  # THREADS
    HF_HUB_OFFLINE=1 "$VENV/bin/python" - "$MODEL" "$1" "$SENTENCES" 2>/dev/null <<'PY'
import sys, time, torch
from sentence_transformers import SentenceTransformer
torch.set_num_threads(int(sys.argv[2]))
model = SentenceTransformer(sys.argv[1], device="cpu")
sentences = open(sys.argv[3]).read().splitlines()
model.encode(sentences[:32], batch_size=32)
start = time.perf_counter()
model.encode(sentences, batch_size=32, normalize_embeddings=True)
print(int(len(sentences) / (time.perf_counter() - start)))
PY
}

declare -A ours ref
peak=0
for threads in 1 2; do
    output=$("$BENCH" --model "$MODEL" --sentences "$SENTENCES" --threads "$threads" --batch 32)
    ours[$threads]=$(echo "$output" | awk '/^engine_sps/ {print $2}')
    peak=$(( $(echo "$output" | awk '/^peak_mb/ {print $2}') > peak ? $(echo "$output" | awk '/^peak_mb/ {print $2}') : peak ))
    ref[$threads]=$(reference "$threads")
    echo "  $threads thread(s): conduit ${ours[$threads]} sentences/s, sentence-transformers ${ref[$threads]} sentences/s" >&2
done
# End to end: the embedder service (release, 2 threads) on a bench port, 16 concurrent clients,
# one sentence per request. Its own Kafka check is irrelevant here, so readiness is not awaited.
PORT=18982
LD_LIBRARY_PATH="$("$STACK" env dev | sed -n 's/^LD_LIBRARY_PATH=//p')" CONDUIT_EMBEDDER_PORT=$PORT CONDUIT_MINILM_DIR="$MODEL" \
    CONDUIT_KAFKA_BROKERS=127.0.0.1:1 CONDUIT_LOG_LEVEL=warning "$BIN/embedder" >"$DIR/embedder.log" 2>&1 &
SERVICE=$!
trap 'kill $SERVICE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
http_sps=$("$BENCH" --url "http://127.0.0.1:$PORT" --sentences "$SENTENCES" --clients 16 | awk '/^http_sps/ {print $2}')
service_peak=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVICE/status")
kill -TERM $SERVICE; wait $SERVICE 2>/dev/null || true
echo "  HTTP /v1/embeddings, 16 clients: $http_sps sentences/s (service peak RSS ${service_peak} MB)" >&2
peak=$(( service_peak > peak ? service_peak : peak ))

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "bench-embedder: ratio_1t=$(ratio "${ours[1]}" "${ref[1]}") ratio_2t=$(ratio "${ours[2]}" "${ref[2]}") ours_1t_sps=${ours[1]} ref_1t_sps=${ref[1]} ours_2t_sps=${ours[2]} ref_2t_sps=${ref[2]} http_sps=$http_sps peak_mb=$peak"
