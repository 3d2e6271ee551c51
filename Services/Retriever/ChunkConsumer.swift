import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Prometheus
import SearchEngine
import ServiceLifecycle

/// Consumes `conduit.indexing.chunks`: each event is one document version (or a tombstone), or
/// one part of a version too large for one event. Postgres first, in one transaction with the
/// consumed offset (a part waits there until the version's last part arrives, and then the
/// whole version is applied); then the in-memory collection, where the version's chunks replace
/// the old ones in one step; then the Kafka offset. A crash anywhere replays the event, and a
/// replay of a stored version (or of a part already held) changes nothing.
struct ChunkConsumer: Service {
    let consumer: KafkaConsumer
    let dlq: DeadLetterQueue
    let repository: any ChunkRepository
    let catalog: SearchCatalog
    let defaults: SearchCollection.Configuration
    /// Where index inserts run (they hold the collection's write lock): never on the cooperative pool.
    let engine: EngineExecutor
    /// Counts processed and dead-lettered events (`conduit_kafka_messages_total`), if set.
    var registry: PrometheusCollectorRegistry?
    let logger: Logger

    typealias Rejection = MessageRejection

    func run() async throws {
        try await consumer.forEachMessageUntilShutdown { try await handle($0) }
    }

    func handle(_ message: KafkaMessage) async throws {
        try await consumer.process(message, deadLetters: dlq, service: "retriever", logger: logger, registry: registry) {
            let consumer = self
            // Decoding an event of up to a megabyte (JSON, base64 vectors) is engine work too.
            let event = try await engine.run { try consumer.decode(message) }
            let position = ConsumedPosition(topic: message.topic, partition: Int(message.partition), nextOffset: message.offset + 1)
            let outcome = try await withRetries { try await repository.apply(event, position: position, defaults: defaults) }
            try await engine.run { try consumer.apply(outcome, of: event) }
        }
    }

    func decode(_ message: KafkaMessage) throws -> IndexedDocumentEvent {
        let event = try MessageRejection.decoding(IndexedDocumentEvent.self, from: message.value, what: "indexed-document event", decoder: EventCoding.decoder())
        guard IndexedDocumentEvent.supportedSchemaVersions.contains(event.schemaVersion) else {
            throw Rejection(reason: "unsupported schema_version \(event.schemaVersion)")
        }
        guard (1...IndexedDocumentEvent.maxParts).contains(event.parts), (0..<event.parts).contains(event.part) else {
            throw Rejection(reason: "part \(event.part) of \(event.parts): a version has 1 to \(IndexedDocumentEvent.maxParts) parts, numbered from 0")
        }
        if event.parts > 1, event.op == .delete || event.schemaVersion < 2 {
            throw Rejection(reason: "only schema 2 upserts come in parts")
        }
        for (field, value) in [("tenant", event.tenant), ("collection", event.collection), ("doc_id", event.docID), ("version", event.version)]
        where value.isEmpty {
            throw Rejection(reason: "'\(field)' must not be empty")
        }
        if event.op == .upsert {
            guard let dimension = event.chunks.first?.embedding.count, dimension > 0 else {
                throw Rejection(reason: "an upsert needs at least one chunk with an embedding")
            }
            if let odd = event.chunks.first(where: { $0.embedding.count != dimension }) {
                throw Rejection(reason: "chunk \(odd.id) has \(odd.embedding.count) dimensions, the first chunk \(dimension)")
            }
            if let bad = event.chunks.first(where: { $0.embedding.contains { !$0.isFinite } }) {
                throw Rejection(reason: "chunk \(bad.id) has a non-finite vector component")
            }
            if Set(event.chunks.map(\.id)).count != event.chunks.count {
                throw Rejection(reason: "chunk ids repeat within the document")
            }
        }
        return event
    }

    private func apply(_ outcome: ApplyOutcome, of event: IndexedDocumentEvent) throws {
        let key = SearchCatalog.Key(tenant: event.tenant, collection: event.collection)
        switch outcome {
        case .replaced(let configuration, let chunks):
            try catalog.collection(key, orCreate: configuration).replaceDocument(event.docID, chunks: chunks)
        case .deleted:
            catalog.collection(key)?.removeDocument(event.docID)
        case .unchanged, .staged:
            break
        case .rejected(let reason):
            throw Rejection(reason: reason)
        }
    }

    @discardableResult
    private func withRetries<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        try await retryUntilCancelled(logger: logger, "applying indexed document", work)
    }
}
