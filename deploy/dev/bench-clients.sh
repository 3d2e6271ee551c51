#!/usr/bin/env bash
# make bench-clients: our Redis and Kafka clients beside their anchors, same machine, same run,
# same servers (a Redis and a Tansu broker of their own on bench ports).
#   Redis: redis-benchmark -t set,get with the same pipeline depth and concurrency.
#   Kafka: the confluent-kafka Python producer (librdkafka 2.16, the library our client runs on),
#          which queues every message at once; ours keeps 10,000 in flight as awaited batches of 1,000,
#          idempotent, acks=all, linger 5 ms, like ours.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK="$ROOT/deploy/dev/stack.sh"
DIR="$ROOT/.stack/bench"
REDIS_PORT=56579
KAFKA_PORT=59292
REQUESTS=${REQUESTS:-200000}
PIPELINE=${PIPELINE:-16}
CLIENTS=${CLIENTS:-16}
MESSAGES=${MESSAGES:-100000}
SIZE=${SIZE:-100}

"$STACK" install
export LD_LIBRARY_PATH="$("$STACK" env dev | sed -n 's/^LD_LIBRARY_PATH=//p')"
echo "building bench-clients (release)…" >&2
swift build --package-path "$ROOT" -c release --product bench-clients -q 2>&1 | grep -v "^warning:" >&2 || true
BENCH="$(swift build --package-path "$ROOT" -c release --show-bin-path)/bench-clients"

mkdir -p "$DIR"
"$STACK" start-redis "$DIR/redis" "$REDIS_PORT"
"$STACK" start-kafka "$DIR/kafka" "$KAFKA_PORT"
trap '"$STACK" stop-kafka "$DIR/kafka"; "$STACK" stop-redis "$DIR/redis"' EXIT

echo "redis: $REQUESTS requests, pipeline $PIPELINE, $CLIENTS concurrent clients" >&2
anchor=$(redis-benchmark -p "$REDIS_PORT" -t set,get -n "$REQUESTS" -P "$PIPELINE" -c "$CLIENTS" -d 3 -q --csv)
anchor_set=$(echo "$anchor" | awk -F'","' '/"SET"/ {print $2}' | cut -d. -f1)
anchor_get=$(echo "$anchor" | awk -F'","' '/"GET"/ {print $2}' | cut -d. -f1)
ours=$("$BENCH" redis --port "$REDIS_PORT" --requests "$REQUESTS" --pipeline "$PIPELINE" --clients "$CLIENTS")
ours_set=$(echo "$ours" | awk '/^redis_set/ {print $2}')
ours_get=$(echo "$ours" | awk '/^redis_get/ {print $2}')
echo "  SET ops/s: conduit $ours_set, redis-benchmark $anchor_set" >&2
echo "  GET ops/s: conduit $ours_get, redis-benchmark $anchor_get" >&2

echo "kafka: $MESSAGES messages of $SIZE bytes, idempotent, acks=all" >&2
anchor_kafka=$(python3 - "$KAFKA_PORT" "$MESSAGES" "$SIZE" <<'PY'
import sys, time, confluent_kafka
port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
producer = confluent_kafka.Producer({"bootstrap.servers": f"127.0.0.1:{port}", "enable.idempotence": True,
                                     "acks": "all", "linger.ms": 5, "client.id": "anchor"})
delivered = 0
def report(error, message):
    global delivered
    if error is None:
        delivered += 1
payload = b"x" * size
producer.produce("bench.anchor", b"warm", key=b"warm")
producer.flush(30)
start = time.perf_counter()
for index in range(count):
    while True:
        try:
            producer.produce("bench.anchor", payload, key=b"k%d" % (index % 1024), on_delivery=report)
            break
        except BufferError:
            producer.poll(0.005)
    producer.poll(0)
producer.flush(60)
elapsed = time.perf_counter() - start
assert delivered == count, f"only {delivered} of {count} delivered"
print(int(count / elapsed))
PY
)
ours_kafka=$("$BENCH" kafka --brokers "127.0.0.1:$KAFKA_PORT" --topic bench.conduit --messages "$MESSAGES" --size "$SIZE" --inflight 10000 --batch 1000 | awk '/^kafka_produce/ {print $2}')
echo "  produce msgs/s: conduit $ours_kafka, confluent-kafka $anchor_kafka" >&2

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "bench-clients: ratio_redis_get=$(ratio "$ours_get" "$anchor_get") ratio_redis_set=$(ratio "$ours_set" "$anchor_set") ratio_kafka_produce=$(ratio "$ours_kafka" "$anchor_kafka") redis_get_ops=$ours_get redis_set_ops=$ours_set kafka_produce_msgs=$ours_kafka anchor_redis_get_ops=$anchor_get anchor_redis_set_ops=$anchor_set anchor_kafka_produce_msgs=$anchor_kafka"
