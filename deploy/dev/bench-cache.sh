#!/usr/bin/env bash
# make bench-cache: semantic cache lookup latency (p50/p99) with 100,000 cached entries, against
# the naive approach (scan every cached embedding in Redis) on the same Redis in the same run.
# Both sides include reading the hit's answer from Redis; the query embedding is not timed
# (both would pay the same embedder call).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
source "$ROOT/deploy/dev/bench-lib.sh"
DIR="$ROOT/.stack/bench/cache"
REDIS_PORT=56679
"$STACK" install
printf '%s\n' "building bench-cache (release)…" >&2
BIN=$("$STACK" release-build bench-cache)
bench_begin "$DIR"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$BIN/bench-cache" --port "$REDIS_PORT" --entries "${ENTRIES:-100000}" --queries "${QUERIES:-2000}" --naive-queries "${NAIVE_QUERIES:-20}"
