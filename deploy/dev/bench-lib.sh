# Sourced by the bench scripts (after setting ROOT and STACK): a clean directory per run,
# background processes collected in PIDS, and on exit all of them and every server started
# under the directory stopped.
bench_begin() {  # DIR
    BENCH_DIR=$1
    rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR"
    PIDS=()
    trap bench_end EXIT
}

bench_end() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$STACK" stop-servers "$BENCH_DIR" >/dev/null 2>&1 || true
}

bench_need_wrk() {  # installs wrk from Debian when it is missing
    command -v wrk >/dev/null && return 0
    printf '%s\n' "installing wrk (apt)" >&2
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y -qq wrk >/dev/null 2>&1 || { $sudo apt-get update -qq >/dev/null; $sudo apt-get install -y -qq wrk >/dev/null; }
}

bench_wait_http() {  # URL: until it answers 2xx (a URL ending in / only has to answer at all)
    local fail=-f; [ "${1%/}" != "$1" ] && fail=""
    for _ in $(seq 1 300); do curl -s $fail -o /dev/null "$1" && return 0; sleep 0.2; done
    printf '%s\n' "bench: $1 did not come up (logs in $BENCH_DIR)" >&2; exit 1
}

bench_priced_upstream() {  # BIN PORT: starts bench-gateway-upstream on PORT and writes
    # $BENCH_DIR/models.yaml with its one model, `bench`, at $10 / $20 per million tokens.
    "$1/bench-gateway-upstream" "$2" >"$BENCH_DIR/upstream.log" 2>&1 & PIDS+=($!)
    cat >"$BENCH_DIR/models.yaml" <<YAML
models:
  - name: bench
    deployments:
      - {id: bench-upstream, provider: openai, model: bench, base_url: "http://127.0.0.1:$2/v1",
         price_per_million: {input: 10, output: 20}, context_window: 4096}
YAML
}
