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
