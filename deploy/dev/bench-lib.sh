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
