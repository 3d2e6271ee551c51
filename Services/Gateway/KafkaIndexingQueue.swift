import ConduitProtocol
import Foundation
import Kafka

/// Indexing requests on a Kafka topic, keyed by `tenant/collection/doc_id` (so a document's
/// requests stay in order on one partition), acknowledged by the broker before `enqueue` returns.
struct KafkaIndexingQueue: IndexingQueue {
    let producer: KafkaProducer
    let topic: String

    func enqueue(_ requests: [IndexingRequest]) async throws {
        let encoder = EventCoding.encoder()
        let messages = try requests.map { KafkaOutgoingMessage(topic: topic, key: Array($0.key.utf8), value: Array(try encoder.encode($0))) }
        do {
            _ = try await producer.send(batch: messages)
        } catch let error as KafkaError where error.reason?.contains("MSG_SIZE_TOO_LARGE") == true {
            throw IndexingQueueError.tooLarge
        } catch {
            throw IndexingQueueError.unavailable
        }
    }
}
