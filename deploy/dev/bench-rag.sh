#!/usr/bin/env bash
# make bench-rag: what retrieval adds to a chat request apart from the model, and the quality of
# grounded answers on the shipped labelled set (deploy/quality). The whole path runs as deployed
# (release builds): gateway → orchestrator → retriever (→ embedder for the query) and the
# corpus indexed through Kafka. Overhead: the same questions with and without `conduit.rag`,
# one at a time, against a model that answers instantly (bench-gateway-upstream). Quality: the
# labelled questions against the local SmolLM2 model (llama-server), with retrieval hit rate
# and citation precision. `make quality-rag` runs only the quality part.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/rag"
MODE=${1:-all}   # all | quality
PG_PORT=55732 REDIS_PORT=56779 KAFKA_PORT=59492 LLAMA_PORT=58380
UPSTREAM_PORT=19090 GATEWAY_PORT=19080 ORCHESTRATOR_PORT=19081 EMBEDDER_PORT=19082 RETRIEVER_PORT=19083
say() { printf '%s\n' "$*" >&2; }

"$STACK" install
say "building the services and the instant upstream (release)…"
BIN=$("$STACK" release-build gateway orchestrator embedder retriever bench-gateway-upstream)

bench_begin "$DIR"
"$STACK" start-postgres "$DIR/postgres" "$PG_PORT"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"
"$STACK" start-llama "$DIR/llama" "$LLAMA_PORT"
"$BIN/bench-gateway-upstream" "$UPSTREAM_PORT" >"$DIR/upstream.log" 2>&1 & PIDS+=($!)
cat >"$DIR/models.yaml" <<YAML
models:
  - name: bench
    deployments:
      - {id: bench-upstream, provider: openai, model: bench, base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1", context_window: 8192}
  - name: smollm2-135m
    deployments:
      - {id: local-smollm2, provider: openai, model: SmolLM2-135M-Instruct, base_url: "http://127.0.0.1:$LLAMA_PORT/v1",
         context_window: 4096, max_tokens: 256, tokenizer: llama.cpp, timeouts: {first_byte_s: 120, total_s: 300}}
YAML
KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
TENANT=bench-rag
mapfile -t base < <("$STACK" env test | grep -E '^(LD_LIBRARY_PATH|CONDUIT_MINILM_DIR|OPENBLAS_CORETYPE)=')
common=("${base[@]}" CONDUIT_RETRIEVER_SNAPSHOT_DIR="$DIR/snapshots"
        CONDUIT_POSTGRES_PORT=$PG_PORT CONDUIT_REDIS_PORT=$REDIS_PORT CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
        CONDUIT_ORCHESTRATOR_URL=http://127.0.0.1:$ORCHESTRATOR_PORT CONDUIT_EMBEDDER_URL=http://127.0.0.1:$EMBEDDER_PORT
        CONDUIT_RETRIEVER_URL=http://127.0.0.1:$RETRIEVER_PORT CONDUIT_LOG_LEVEL=warning CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=10000)
env "${common[@]}" CONDUIT_EMBEDDER_PORT=$EMBEDDER_PORT "$BIN/embedder" >"$DIR/embedder.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_RETRIEVER_PORT=$RETRIEVER_PORT "$BIN/retriever" >"$DIR/retriever.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_ORCHESTRATOR_PORT=$ORCHESTRATOR_PORT CONDUIT_MODEL_CATALOG="$DIR/models.yaml" \
    "$BIN/orchestrator" >"$DIR/orchestrator.log" 2>&1 & PIDS+=($!)
env "${common[@]}" CONDUIT_GATEWAY_PORT=$GATEWAY_PORT CONDUIT_ADMIN_KEY="$KEY" CONDUIT_ADMIN_TENANT=$TENANT \
    "$BIN/gateway" >"$DIR/gateway.log" 2>&1 & PIDS+=($!)
for port in $EMBEDDER_PORT $RETRIEVER_PORT $ORCHESTRATOR_PORT $GATEWAY_PORT; do
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.3; done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { say "bench-rag: the service on $port did not become ready (logs in $DIR)"; exit 1; }
done

arguments=(--gateway "http://127.0.0.1:$GATEWAY_PORT" --retriever "http://127.0.0.1:$RETRIEVER_PORT" --tenant "$TENANT" --key "$KEY" --model smollm2-135m)
[ "$MODE" = quality ] || arguments+=(--overhead "${REQUESTS:-300}")
say "indexing the corpus and measuring…"
line=$(python3 "$ROOT/deploy/quality/rag_bench.py" "${arguments[@]}")
name=bench-rag; [ "$MODE" = quality ] && name=quality-rag
echo "$name: $line"
