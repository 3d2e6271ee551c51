import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging

/// Sends one usage event per request to `conduit.usage` after the response, on its own task, so
/// the broker's latency never reaches the caller. A failed send is logged and dropped: usage
/// events are accounting, not part of the answer.
struct UsageRecorder: Sendable {
    let producer: KafkaProducer
    let topic: String
    let logger: Logger

    func record(_ event: UsageEvent) {
        Task {
            do {
                let value = try EventCoding.encoder().encode(event)
                _ = try await producer.send(topic: topic, key: event.requestID, value: Array(value))
            } catch {
                logger.warning("usage event not sent", metadata: [LogKey.requestID: "\(event.requestID)", LogKey.error: "\(error)"])
            }
        }
    }
}
