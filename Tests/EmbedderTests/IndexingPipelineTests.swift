import ConduitKit
import ConduitProtocol
@testable import Embedder
import Foundation
import Kafka
import Logging
import Prometheus
import Testing
import TestSupport
import TextEmbedding

/// The indexing pipeline against the test stack's broker, each test on its own topics and group.
@Suite(.timeLimit(.minutes(3)))
struct IndexingPipelineTests {
    static let kafka = KafkaConfiguration(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "pipeline-tests")

    struct Topics {
        let requests = TestEnvironment.uniqueName("conduit.test.requests")
        let chunks = TestEnvironment.uniqueName("conduit.test.chunks")
        let dlq = TestEnvironment.uniqueName("conduit.test.dlq")
        let group = TestEnvironment.uniqueName("embedder")
    }

    /// A pipeline with its consumer, batcher and producer running; `stop` ends them.
    struct Running {
        let tasks: [Task<Void, any Error>]
        let producer: KafkaProducer
        let batcher: EmbeddingBatcher

        func stop() async {
            tasks.last?.cancel()
            for task in tasks.reversed() {
                task.cancel()
                _ = await task.result
            }
            batcher.stop()
            await producer.shutdown()
        }
    }

    static func start(_ topics: Topics, maxEventBytes: Int = 900_000) throws -> Running {
        let embedder = try TextEmbedder(modelDirectory: TestEnvironment.miniLMDirectory)
        let logger = Logger(label: "pipeline")
        let batcher = EmbeddingBatcher(model: embedder.model, modelName: "all-minilm-l6-v2", configuration: .init(), registry: PrometheusCollectorRegistry(), logger: logger)
        let producer = KafkaProducer(configuration: .init(kafka: kafka), logger: logger)
        let consumer = KafkaConsumer(
            configuration: .init(kafka: kafka, groupID: topics.group, topics: [topics.requests], maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000, commitIntervalMilliseconds: 200),
            logger: logger
        )
        var configuration = IndexingPipeline.Configuration()
        configuration.chunksTopic = topics.chunks
        configuration.maxDocumentCharacters = 5000
        configuration.maxEventBytes = maxEventBytes
        var chunker = DocumentChunker(tokenizer: embedder.tokenizer)
        chunker.maxTokens = 40
        chunker.overlapTokens = 8
        let pipeline = IndexingPipeline(
            consumer: consumer, producer: producer, dlq: DeadLetterQueue(producer: producer, topic: topics.dlq),
            batcher: batcher, chunker: chunker, configuration: configuration, engine: EngineExecutor(threads: 1), logger: logger
        )
        let batcherTask = Task { try await batcher.run() }
        let consumerTask = Task { try await consumer.run() }
        let pipelineTask = Task { try await pipeline.run() }
        return Running(tasks: [batcherTask, consumerTask, pipelineTask], producer: producer, batcher: batcher)
    }

    static func send(_ producer: KafkaProducer, _ topic: String, key: String, _ value: String) async throws {
        try await producer.send(topic: topic, key: key, value: Array(value.utf8))
    }

    static func request(_ docID: String, text: String?, op: IndexingRequest.Operation = .upsert) throws -> String {
        String(decoding: try JSONEncoder().encode(IndexingRequest(op: op, tenant: "acme", collection: "docs", docID: docID, text: text)), as: UTF8.self)
    }

    @Test func documentInChunksOutAndBadEventsToTheDLQ() async throws {
        let topics = Topics()
        let running = try Self.start(topics)
        let text = DocumentChunkerTests.article
        let input = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Logger(label: "input"))
        try await Self.send(input, topics.requests, key: "acme/docs/guide", try Self.request("guide", text: text))
        try await Self.send(input, topics.requests, key: "acme/docs/broken", "{\"schema_version\":1,\"op\":")
        try await Self.send(input, topics.requests, key: "acme/docs/empty", try Self.request("empty", text: nil))
        try await Self.send(input, topics.requests, key: "acme/docs/old", try Self.request("old", text: nil, op: .delete))
        try await Self.send(input, topics.requests, key: "acme/docs/huge", try Self.request("huge", text: String(repeating: "x ", count: 3000)))

        let outputs = try await TestEnvironment.readMessages(topics.chunks, count: 2).map { try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data($0.value)) }
        let dead = try await TestEnvironment.readMessages(topics.dlq, count: 3).map { try JSONDecoder().decode(DeadLetterEvent.self, from: Data($0.value)) }
        await running.stop()
        await input.shutdown()

        let guide = try #require(outputs.first { $0.docID == "guide" })
        #expect(guide.op == .upsert)
        #expect(guide.chunks.count > 3)
        #expect(guide.chunks.map(\.id) == (0..<guide.chunks.count).map { "guide#\($0)" })
        let source = Array(text.unicodeScalars)
        for chunk in guide.chunks {
            #expect(String(String.UnicodeScalarView(source[chunk.start..<chunk.end])) == chunk.text)
            #expect(chunk.embedding.count == 384)
            #expect(abs(chunk.embedding.reduce(0) { $0 + $1 * $1 } - 1) < 1e-3)
        }
        let tombstone = try #require(outputs.first { $0.docID == "old" })
        #expect(tombstone.op == .delete)
        #expect(tombstone.chunks.isEmpty)

        #expect(dead.compactMap(\.key).sorted() == ["acme/docs/broken", "acme/docs/empty", "acme/docs/huge"])
        #expect(dead.first { $0.key == "acme/docs/empty" }?.reason.contains("'text' is required") == true)
        #expect(dead.first { $0.key == "acme/docs/huge" }?.reason.contains("5000") == true)
        #expect(dead.allSatisfy { $0.service == "embedder" && $0.sourceTopic == topics.requests })
    }

    @Test func resendingADocumentGivesTheSameIDsAndVersion() async throws {
        let topics = Topics()
        let running = try Self.start(topics)
        let input = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Logger(label: "input"))
        for _ in 0..<2 {
            try await Self.send(input, topics.requests, key: "acme/docs/same", try Self.request("same", text: DocumentChunkerTests.article))
        }
        let outputs = try await TestEnvironment.readMessages(topics.chunks, count: 2).map { try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data($0.value)) }
        await running.stop()
        await input.shutdown()
        #expect(outputs[0].version == outputs[1].version)
        #expect(outputs[0].chunks.map(\.id) == outputs[1].chunks.map(\.id))
        #expect(outputs[0].chunks.map(\.contentHash) == outputs[1].chunks.map(\.contentHash))
    }

    @Test func restartMidStreamLosesNothing() async throws {
        let topics = Topics()
        let input = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Logger(label: "input"))
        for index in 0..<20 {
            try await Self.send(input, topics.requests, key: "acme/docs/d\(index)", try Self.request("d\(index)", text: "Document \(index). It has two sentences."))
        }
        // The first instance stops as soon as a few documents are out.
        let first = try Self.start(topics)
        _ = try await TestEnvironment.readMessages(topics.chunks, count: 3)
        await first.stop()
        let second = try Self.start(topics)
        var seen = Set<String>()
        let reader = KafkaConsumer(configuration: .init(kafka: Self.kafka, groupID: TestEnvironment.uniqueName("reader"), topics: [topics.chunks], maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000), logger: Logger(label: "reader"))
        let readerTask = Task { try await reader.run() }
        for try await message in reader.messages {
            seen.insert(try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data(message.value)).docID)
            if seen.count == 20 { break }
        }
        readerTask.cancel()
        _ = await readerTask.result
        await second.stop()
        await input.shutdown()
        #expect(seen == Set((0..<20).map { "d\($0)" }))
    }

    /// A document whose chunk event is over the limit goes out in parts, each within the limit,
    /// in order on the document's partition, that together hold every chunk once. Only what
    /// cannot fit at all (a chunk whose event alone is over the limit) goes to the DLQ, with the
    /// reason, and the partition moves on. Over-limit events used to be retried for ever.
    @Test func aVersionOverTheEventLimitGoesOutInPartsAndOnlyWhatCannotFitToTheDLQ() async throws {
        let topics = Topics()
        let limit = 12_000
        let running = try Self.start(topics, maxEventBytes: limit)
        let input = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Logger(label: "input"))
        try await Self.send(input, topics.requests, key: "acme/docs/long", try Self.request("long", text: DocumentChunkerTests.article))
        let wide = IndexingRequest(op: .upsert, tenant: "acme", collection: "docs", docID: "wide", text: "Short text.",
                                   metadata: ["notes": .string(String(repeating: "n", count: limit))])
        try await Self.send(input, topics.requests, key: "acme/docs/wide", String(decoding: try JSONEncoder().encode(wide), as: UTF8.self))
        try await Self.send(input, topics.requests, key: "acme/docs/long", try Self.request("long", text: "A short second version."))

        let reader = KafkaConsumer(configuration: .init(kafka: Self.kafka, groupID: TestEnvironment.uniqueName("reader"), topics: [topics.chunks], maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000), logger: Logger(label: "reader"))
        let readerTask = Task { try await reader.run() }
        var outputs: [(size: Int, event: IndexedDocumentEvent)] = []
        for try await message in reader.messages {
            let event = try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data(message.value))
            outputs.append((message.value.count, event))
            if event.chunks.first?.text == "A short second version." { break }
        }
        readerTask.cancel()
        _ = await readerTask.result
        let dead = try await TestEnvironment.readMessages(topics.dlq, count: 1).map { try JSONDecoder().decode(DeadLetterEvent.self, from: Data($0.value)) }
        await running.stop()
        await input.shutdown()

        let parts = outputs.dropLast()
        #expect(parts.count > 1)
        #expect(parts.allSatisfy { $0.size <= limit && $0.event.docID == "long" && $0.event.parts == parts.count })
        #expect(parts.map(\.event.part) == Array(0..<parts.count))
        #expect(Set(parts.map(\.event.version)).count == 1)
        let chunks = parts.flatMap(\.event.chunks)
        #expect(chunks.map(\.id) == (0..<chunks.count).map { "long#\($0)" })
        #expect(chunks.allSatisfy { $0.embedding.count == 384 })
        let source = Array(DocumentChunkerTests.article.unicodeScalars)
        #expect(chunks.last?.end == source.count)
        #expect(outputs.last?.event.parts == 1)
        #expect(dead.first?.key == "acme/docs/wide")
        #expect(dead.first?.reason.contains("alone makes") == true)
        #expect(dead.first?.reason.contains("CONDUIT_EMBEDDER_MAX_EVENT_BYTES") == true)
    }
}
