import ConduitProtocol
import Foundation

/// Routes a message that cannot be processed to the dead-letter topic, with the reason, so the
/// consumer can move on without losing it.
public struct DeadLetterQueue: Sendable {
    public let producer: KafkaProducer
    public let topic: String

    public init(producer: KafkaProducer, topic: String = KafkaTopic.indexingDLQ) {
        self.producer = producer
        self.topic = topic
    }

    /// Publishes the bad message under its original key and waits for the broker's acknowledgement.
    @discardableResult
    public func send(_ message: KafkaMessage, reason: String, service: String) async throws -> KafkaDeliveryReport {
        let event = DeadLetterEvent(
            reason: reason,
            service: service,
            sourceTopic: message.topic,
            partition: message.partition,
            offset: message.offset,
            key: message.keyString,
            value: message.value
        )
        return try await producer.send(topic: topic, key: message.key, value: Array(try JSONEncoder().encode(event)))
    }
}
