import Foundation
import Kafka
import Logging
import Redis

/// Throughput of our Redis and Kafka clients, run by deploy/dev/bench-clients.sh beside
/// redis-benchmark and the confluent-kafka producer on the same servers.
///
///     bench-clients redis --port P --requests N --pipeline P --clients C [--connections K]
///     bench-clients kafka --brokers H:P --topic T --messages N --size B --inflight W
///
/// Prints one line per measurement: `<name> <ops per second>`.
@main
struct ClientsBenchmark {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else { fatalError("usage: bench-clients redis|kafka [options]") }
        let mode = arguments.removeFirst()
        var options: [String: String] = [:]
        while arguments.count >= 2 {
            options[String(arguments.removeFirst().drop { $0 == "-" })] = arguments.removeFirst()
        }
        func int(_ key: String, _ fallback: Int) -> Int { options[key].flatMap { Int($0) } ?? fallback }
        let logger = Logger(label: "bench")
        switch mode {
        case "redis":
            let redis = RedisClient(
                configuration: .init(port: int("port", 56579), connections: int("connections", 2), maxBatch: 4096),
                logger: logger
            )
            let requests = int("requests", 200_000)
            let pipeline = int("pipeline", 16)
            let clients = int("clients", 16)
            let value = String(repeating: "x", count: int("size", 3))
            for command in ["SET", "GET"] {
                // Like redis-benchmark, each client builds its pipeline once and sends it repeatedly.
                let pipelines = (0..<clients).map { client in
                    (0..<pipeline).map { index in
                        let key = "bench:\(client):\(index)"
                        return command == "SET" ? RedisCommand("SET", key, value) : RedisCommand("GET", key)
                    }
                }
                let seconds = try await measure(requests: requests, pipeline: pipeline, clients: clients) { client, _ in
                    try await redis.pipeline(pipelines[client])
                }
                print("redis_\(command.lowercased()) \(Int(Double(requests) / seconds))")
            }
            await redis.shutdown()
        case "kafka":
            let producer = KafkaProducer(
                configuration: .init(kafka: .init(bootstrapServers: options["brokers"] ?? "127.0.0.1:59292", clientID: "bench")),
                logger: logger
            )
            let topic = options["topic"] ?? "bench.clients"
            let messages = int("messages", 200_000)
            let inflight = int("inflight", 2000)
            let payload = [UInt8](repeating: 120, count: int("size", 100))
            // Warm up: metadata, producer id, topic creation.
            try await producer.send(topic: topic, key: "warm", value: payload)
            let start = ContinuousClock.now
            // `inflight` messages in flight at once, as batches of `batch` awaited together.
            let batchSize = int("batch", 500)
            let workers = max(1, inflight / batchSize)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        var first = worker * batchSize
                        while first < messages {
                            let batch = (first..<min(first + batchSize, messages)).map { index in
                                KafkaOutgoingMessage(topic: topic, key: Array("k\(index % 1024)".utf8), value: payload)
                            }
                            _ = try await producer.send(batch: batch)
                            first += workers * batchSize
                        }
                    }
                }
                try await group.waitForAll()
            }
            print("kafka_produce \(Int(Double(messages) / seconds(since: start)))")
            await producer.shutdown()
        default:
            fatalError("unknown mode \(mode)")
        }
    }

    /// Runs `clients` tasks that together send `requests` commands in pipelines of `pipeline`.
    static func measure(requests: Int, pipeline: Int, clients: Int, batch: @escaping @Sendable (Int, Int) async throws -> [RedisValue]) async throws -> Double {
        let batches = requests / pipeline
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    var index = client
                    while index < batches {
                        let replies = try await batch(client, index)
                        precondition(replies.count == pipeline)
                        index += clients
                    }
                }
            }
            try await group.waitForAll()
        }
        return seconds(since: start)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
