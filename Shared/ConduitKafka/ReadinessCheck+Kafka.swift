import ConduitKit
import Kafka

extension ReadinessCheck {
    public static func kafka(_ producer: KafkaProducer) -> ReadinessCheck {
        ReadinessCheck(name: "kafka") { try await producer.checkBroker(timeout: .seconds(2)) }
    }

    public static func kafka(_ consumer: KafkaConsumer) -> ReadinessCheck {
        ReadinessCheck(name: "kafka") { try await consumer.checkBroker(timeout: .seconds(2)) }
    }
}
