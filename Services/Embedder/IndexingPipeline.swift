import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Prometheus
import ServiceLifecycle
import TextEmbedding

/// Consumes indexing requests, chunks and embeds each document, and publishes one event per
/// document version. An input offset is marked durable only after its output (or its DLQ
/// record) is acknowledged by the broker, so a restart repeats at most unfinished work.
struct IndexingPipeline: Service {
    struct Configuration: Sendable {
        var chunksTopic = KafkaTopic.indexingChunks
        var maxDocumentCharacters = 1_000_000
        var chunkTokens = 200
        var overlapTokens = 32
        /// The largest chunk event produced, in bytes, below the broker's message limit (1 MB by
        /// default): a larger document version goes out as several parts. Default 900,000.
        var maxEventBytes = 900_000
    }

    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let dlq: DeadLetterQueue
    let batcher: EmbeddingBatcher
    let chunker: DocumentChunker
    let configuration: Configuration
    /// Decoding, extraction, chunking, tokenizing and encoding (a megabyte of text) run here,
    /// not on the cooperative pool; inference runs on the batcher's threads.
    let engine: EngineExecutor
    /// Counts processed and dead-lettered requests (`conduit_kafka_messages_total`), if set.
    var registry: PrometheusCollectorRegistry?
    let logger: Logger

    /// Why an event cannot be indexed; the text goes into the DLQ record.
    typealias Rejection = MessageRejection

    func run() async throws {
        try await consumer.forEachMessageUntilShutdown { try await handle($0) }
    }

    func handle(_ message: KafkaMessage) async throws {
        try await consumer.process(message, deadLetters: dlq, service: "embedder", logger: logger, registry: registry) {
            let pipeline = self
            let event = try await engine.run { try pipeline.process(try pipeline.decode(message)) }
            try await publish(event)
        }
    }

    func decode(_ message: KafkaMessage) throws -> IndexingRequest {
        let request = try MessageRejection.decoding(IndexingRequest.self, from: message.value, what: "indexing request")
        guard request.schemaVersion == IndexingRequest.currentSchemaVersion else {
            throw Rejection(reason: "unsupported schema_version \(request.schemaVersion)")
        }
        for (field, value) in [("tenant", request.tenant), ("collection", request.collection), ("doc_id", request.docID)] where value.isEmpty {
            throw Rejection(reason: "'\(field)' must not be empty")
        }
        if request.op == .upsert {
            guard let text = request.text else { throw Rejection(reason: "'text' is required for upsert") }
            guard text.unicodeScalars.count <= configuration.maxDocumentCharacters else {
                throw Rejection(reason: "'text' has more than \(configuration.maxDocumentCharacters) characters")
            }
        }
        return request
    }

    /// The event for one request: a tombstone for deletes, chunks with vectors for upserts.
    func process(_ request: IndexingRequest) throws -> PendingEvent {
        let metadataText = (try? String(decoding: JSONEncoder.sorted.encode(request.metadata ?? [:]), as: UTF8.self)) ?? ""
        var event = IndexedDocumentEvent(
            op: request.op, tenant: request.tenant, collection: request.collection, docID: request.docID,
            version: contentHash((request.text ?? "") + "\u{0}" + metadataText)
        )
        event.metadata = request.metadata
        event.source = request.source
        guard request.op == .upsert, let text = request.text else { return PendingEvent(event: event, chunks: []) }
        let contentType = request.metadata?["content_type"]?.stringValue
        let extracted = ExtractedText.extract(text, format: ExtractedText.format(of: text, contentType: contentType, source: request.source))
        event.model = EmbeddingsController.modelID
        return PendingEvent(event: event, chunks: chunker.chunk(extracted))
    }

    struct PendingEvent: Sendable {
        var event: IndexedDocumentEvent
        var chunks: [DocumentChunker.Chunk]
    }

    private func publish(_ pending: PendingEvent) async throws {
        let key = pending.event.key
        var vectors: [[Float]] = []
        if !pending.chunks.isEmpty {
            // Headings give chunks context in the vector, as the text a reader would see under them.
            let tokenizer = chunker.tokenizer
            let sequences = try await engine.run {
                pending.chunks.map { chunk in tokenizer.encode(chunk.heading.map { "\($0)\n\(chunk.text)" } ?? chunk.text) }
            }
            vectors = try await withRetries { try await batcher.embed(sequences) }
        }
        let maxBytes = configuration.maxEventBytes
        let values = try await engine.run { [vectors] in
            var event = pending.event
            event.chunks = zip(pending.chunks, vectors).enumerated().map { index, pair in
                IndexedDocumentEvent.Chunk(
                    id: "\(event.docID)#\(index)", index: index, text: pair.0.text, start: pair.0.start, end: pair.0.end,
                    heading: pair.0.heading, contentHash: contentHash(pair.0.text), embedding: pair.1
                )
            }
            return try Self.encodeInParts(event, maxBytes: maxBytes)
        }
        let messages = values.map { KafkaOutgoingMessage(topic: configuration.chunksTopic, key: Array(key.utf8), value: $0) }
        try await withRetries {
            do {
                _ = try await producer.send(batch: messages)
            } catch let error as KafkaError where error.reason?.contains("MSG_SIZE_TOO_LARGE") == true {
                // The broker's limit is below ours: retrying cannot help, and would block the partition.
                throw Rejection(reason: "the broker refused a chunk event of at most \(configuration.maxEventBytes) bytes as too large: lower CONDUIT_EMBEDDER_MAX_EVENT_BYTES below the broker's message.max.bytes")
            }
        }
    }

    /// The event as one message, or as parts of at most `maxBytes` each when it is larger (chunks
    /// in order, every part with the document's fields). A rejection when one chunk alone does
    /// not fit or more than `IndexedDocumentEvent.maxParts` parts would be needed.
    static func encodeInParts(_ event: IndexedDocumentEvent, maxBytes: Int) throws -> [[UInt8]] {
        let encoder = EventCoding.encoder()
        let whole = Array(try encoder.encode(event))
        if whole.count <= maxBytes { return [whole] }
        // Each chunk's encoded size, and the size of the event around them (with room for the
        // largest part numbers), decide where parts begin.
        var shell = event
        shell.chunks = []
        shell.part = IndexedDocumentEvent.maxParts
        shell.parts = IndexedDocumentEvent.maxParts
        let shellBytes = try encoder.encode(shell).count
        var groups: [Range<Int>] = []
        var start = 0
        var size = shellBytes
        for (index, chunk) in event.chunks.enumerated() {
            let bytes = try encoder.encode(chunk).count + 1
            guard shellBytes + bytes <= maxBytes else {
                throw Rejection(reason: "chunk \(chunk.id) alone makes a \(shellBytes + bytes)-byte event; at most \(maxBytes) bytes go to the broker (CONDUIT_EMBEDDER_MAX_EVENT_BYTES): the document's metadata is too large")
            }
            if size + bytes > maxBytes {
                groups.append(start..<index)
                start = index
                size = shellBytes
            }
            size += bytes
        }
        groups.append(start..<event.chunks.count)
        guard groups.count <= IndexedDocumentEvent.maxParts else {
            throw Rejection(reason: "the document's \(event.chunks.count) embedded chunks need \(groups.count) events of at most \(maxBytes) bytes; at most \(IndexedDocumentEvent.maxParts) are allowed: split the document")
        }
        return try groups.enumerated().map { part, range in
            var piece = event
            piece.chunks = Array(event.chunks[range])
            piece.part = part
            piece.parts = groups.count
            return Array(try encoder.encode(piece))
        }
    }

    @discardableResult
    private func withRetries<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        try await retryUntilCancelled(logger: logger, "indexing step", work)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}
