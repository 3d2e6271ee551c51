import Kafka
import Postgres
import Redis

/// One dependency `/readyz` checks: ready when `check` returns within the time limit.
public struct ReadinessCheck: Sendable {
    public var name: String
    public var check: @Sendable () async throws -> Void

    public init(name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }

    public static func postgres(_ client: PostgresClient) -> ReadinessCheck {
        ReadinessCheck(name: "postgres") { try await client.query("SELECT 1") }
    }

    public static func redis(_ client: RedisClient) -> ReadinessCheck {
        ReadinessCheck(name: "redis") {
            guard try await client.ping() else { throw RedisError(.unexpectedReply) }
        }
    }

    public static func kafka(_ producer: KafkaProducer) -> ReadinessCheck {
        ReadinessCheck(name: "kafka") { try await producer.checkBroker(timeout: .seconds(2)) }
    }

    public static func kafka(_ consumer: KafkaConsumer) -> ReadinessCheck {
        ReadinessCheck(name: "kafka") { try await consumer.checkBroker(timeout: .seconds(2)) }
    }
}
