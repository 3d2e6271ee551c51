import ConduitKit
import ConduitPostgres
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Postgres
@testable import Retriever
import SearchEngine
import Testing
import TestSupport

/// The chunk consumer against the test stack's broker and Postgres, each test on its own
/// topics, group and tenant.
@Suite(.timeLimit(.minutes(3)))
struct ChunkConsumerTests {
    static let kafka = KafkaConfiguration(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "retriever-tests")
    static let logger = Logger(label: "retriever-consumer")

    static func postgres() -> PostgresClient {
        PostgresClient(configuration: try! ServiceConfiguration(service: .retriever).postgres, logger: logger)
    }

    /// A consumer with its own catalog, reading `topic` as `group`; `stop` ends it.
    struct Running {
        let catalog = SearchCatalog()
        let tasks: [Task<Void, any Error>]

        init(topic: String, dlq: String, group: String, postgres: PostgresClient, producer: KafkaProducer) {
            let consumer = KafkaConsumer(
                configuration: .init(kafka: ChunkConsumerTests.kafka, groupID: group, topics: [topic], maxPollIntervalMilliseconds: 7000,
                                     sessionTimeoutMilliseconds: 6000, commitIntervalMilliseconds: 200),
                logger: ChunkConsumerTests.logger)
            let chunks = ChunkConsumer(
                consumer: consumer, dlq: DeadLetterQueue(producer: producer, topic: dlq), repository: PostgresChunkRepository(postgres: postgres),
                catalog: catalog, defaults: .init(dimension: 384), engine: EngineExecutor(threads: 1), logger: ChunkConsumerTests.logger)
            tasks = [Task { try await consumer.run() }, Task { try await chunks.run() }]
        }

        func stop() async {
            for task in tasks.reversed() {
                task.cancel()
                _ = await task.result
            }
        }
    }

    static func event(_ tenant: String, _ docID: String, version: String, texts: [String], axis: Int = 0, op: IndexingRequest.Operation = .upsert) -> IndexedDocumentEvent {
        var event = IndexedDocumentEvent(op: op, tenant: tenant, collection: "docs", docID: docID, version: version)
        event.metadata = ["lang": .string("en"), "meta": .object(["year": .number(2024)])]
        event.chunks = op == .delete ? [] : texts.enumerated().map { index, text in
            var vector = [Float](repeating: 0.01, count: 4)
            vector[(axis + index) % 4] = 1
            return .init(id: "\(docID)#\(index)", index: index, text: text, start: index * 10, end: index * 10 + text.count,
                         heading: index == 0 ? "Intro" : nil, contentHash: "h\(index)", embedding: vector)
        }
        return event
    }

    /// A running Postgres pool (schema migrated) and producer; cancel the tasks when done.
    static func infrastructure() async throws -> (PostgresClient, KafkaProducer, [Task<Void, any Error>]) {
        let postgres = postgres()
        let producer = KafkaProducer(configuration: .init(kafka: kafka), logger: logger)
        let services = [Task { try await postgres.run() }, Task { try await producer.run() }]
        try await migrate(RetrieverMigrations.retriever, on: postgres, logger: logger)
        return (postgres, producer, services)
    }

    static func publish(_ producer: KafkaProducer, _ topic: String, _ event: IndexedDocumentEvent) async throws {
        try await producer.send(topic: topic, key: event.key, value: Array(try EventCoding.encoder().encode(event)))
    }

    /// (chunk_id, row_id, text) of a tenant's stored chunks, in order.
    static func rows(_ postgres: PostgresClient, tenant: String) async throws -> [String] {
        try await postgres.query("SELECT chunk_id, row_id, text FROM retriever.chunks WHERE tenant_id = $1 ORDER BY chunk_id", tenant).map {
            "\(try $0.decode(String.self, at: 0))|\(try $0.decode(Int64.self, at: 1))|\(try $0.decode(String.self, at: 2))"
        }
    }

    static func keywordHits(_ catalog: SearchCatalog, _ tenant: String, _ text: String) -> [String] {
        let collection = catalog.collection(.init(tenant: tenant, collection: "docs"))
        return ((try? collection?.search(.init(text: text, topK: 20, mode: .keyword))) ?? []).map(\.chunkID).sorted()
    }

    @Test func versionsReplaceTombstonesDeleteAndReplaysChangeNothing() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let topic = TestEnvironment.uniqueName("conduit.test.chunks")
        let dlq = TestEnvironment.uniqueName("conduit.test.dlq")
        let (postgres, producer, services) = try await Self.infrastructure()
        defer { for task in services { task.cancel() } }

        try await Self.publish(producer, topic, Self.event(tenant, "guide", version: "v1", texts: ["alpha one", "alpha two", "alpha three"]))
        try await Self.publish(producer, topic, Self.event(tenant, "faq", version: "v1", texts: ["beta question"]))
        try await Self.publish(producer, topic, Self.event(tenant, "guide", version: "v2", texts: ["gamma one", "gamma two"]))
        try await Self.publish(producer, topic, Self.event(tenant, "gone", version: "v1", texts: ["delta"]))
        try await Self.publish(producer, topic, Self.event(tenant, "gone", version: "v1", texts: [], op: .delete))
        // A replayed old event of the same version is a no-op.
        try await Self.publish(producer, topic, Self.event(tenant, "faq", version: "v1", texts: ["beta question"]))

        let first = Running(topic: topic, dlq: dlq, group: TestEnvironment.uniqueName("retriever"), postgres: postgres, producer: producer)
        // Done when every partition's position is the end of what it holds (keys spread over
        // partitions) and the index has caught up with the rows: three rows can be stored while
        // "gone" is still to be inserted and deleted, so the row count alone is no sign of the end.
        #expect(try await eventually(within: .seconds(60)) {
            try await PostgresChunkRepository(postgres: postgres).appliedOffsets().filter { $0.topic == topic }.map(\.nextOffset).reduce(0, +) == 6
                && Self.keywordHits(first.catalog, tenant, "gamma beta").count == 3 && Self.keywordHits(first.catalog, tenant, "delta").isEmpty
        })
        let stored = try await Self.rows(postgres, tenant: tenant)
        #expect(stored.map { $0.split(separator: "|")[0] } == ["faq#0", "guide#0", "guide#1"])
        #expect(Self.keywordHits(first.catalog, tenant, "alpha").isEmpty)
        #expect(Self.keywordHits(first.catalog, tenant, "delta").isEmpty)
        // Document metadata is flattened into each chunk, with its heading.
        let hit = try #require(try first.catalog.collection(.init(tenant: tenant, collection: "docs"))?.search(.init(text: "gamma one", topK: 1, mode: .keyword)).first)
        #expect(hit.metadata["lang"] == .string("en"))
        #expect(hit.metadata["meta.year"] == .number(2024))
        #expect(hit.metadata["heading"] == .string("Intro"))
        let offsets = try await PostgresChunkRepository(postgres: postgres).appliedOffsets().filter { $0.topic == topic }
        await first.stop()

        // Replay the whole topic twice with fresh groups, each starting as the service does
        // (indexes loaded from Postgres): the same rows, the same row ids, the same answers.
        for _ in 0..<2 {
            // Taken before the replay starts: it can be done before the loader is (the loader reads
            // every collection in the database, which a long-lived test database has many of).
            let start: String = try await postgres.query("SELECT now()::text")[0].decode(at: 0)
            let replay = Running(topic: topic, dlq: dlq, group: TestEnvironment.uniqueName("retriever-replay"), postgres: postgres, producer: producer)
            try await IndexLoader(repository: PostgresChunkRepository(postgres: postgres), catalog: replay.catalog, snapshots: nil, engine: EngineExecutor(threads: 1), logger: Self.logger).load()
            let partitions = offsets.count
            #expect(try await eventually(within: .seconds(60)) {
                // Done when every partition's position was written again by this replay.
                let again = try await postgres.query(
                    "SELECT next_offset FROM retriever.applied_offsets WHERE topic = $1 AND updated_at > $2::timestamptz", topic, start)
                let total = try again.map { try $0.decode(Int64.self, at: 0) }.reduce(0, +)
                return again.count == partitions && total == 6
            })
            #expect(try await Self.rows(postgres, tenant: tenant) == stored)
            #expect(Self.keywordHits(replay.catalog, tenant, "gamma beta alpha delta") == ["faq#0", "guide#0", "guide#1"])
            await replay.stop()
        }
    }

    /// The parts of a version too large for one event: nothing of it is searchable, and the old
    /// version stays, until its last part arrives; then all of it at once. Another document's
    /// event between the parts and a replayed part change nothing; a newer version sent whole
    /// drops parts that never completed.
    @Test func aVersionInPartsIsAppliedWholeWhenItsLastPartArrives() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let topic = TestEnvironment.uniqueName("conduit.test.chunks")
        let dlq = TestEnvironment.uniqueName("conduit.test.dlq")
        let (postgres, producer, services) = try await Self.infrastructure()
        defer { for task in services { task.cancel() } }
        func pending() async throws -> Int64 {
            try await postgres.query("SELECT count(*) FROM retriever.pending_parts WHERE tenant_id = $1", tenant)[0].decode(at: 0)
        }

        try await Self.publish(producer, topic, Self.event(tenant, "manual", version: "v1", texts: ["obsolete manual"]))
        let whole = Self.event(tenant, "manual", version: "v2", texts: ["zinc one", "zinc two", "zinc three", "zinc four", "zinc five"])
        let parts = [0..<2, 2..<4, 4..<5].enumerated().map { part, range in
            var piece = whole
            piece.chunks = Array(whole.chunks[range])
            (piece.part, piece.parts) = (part, 3)
            return piece
        }
        try await Self.publish(producer, topic, parts[0])
        try await Self.publish(producer, topic, Self.event(tenant, "other", version: "v1", texts: ["copper"]))
        try await Self.publish(producer, topic, parts[1])
        try await Self.publish(producer, topic, parts[0])

        let running = Running(topic: topic, dlq: dlq, group: TestEnvironment.uniqueName("retriever"), postgres: postgres, producer: producer)
        defer { Task { await running.stop() } }
        #expect(try await eventually(within: .seconds(60)) {
            try await pending() == 2 && Self.keywordHits(running.catalog, tenant, "copper obsolete").count == 2
        })
        #expect(Self.keywordHits(running.catalog, tenant, "zinc").isEmpty)
        #expect(try await Self.rows(postgres, tenant: tenant).map { $0.split(separator: "|")[0] } == ["manual#0", "other#0"])

        try await Self.publish(producer, topic, parts[2])
        #expect(try await eventually(within: .seconds(60)) { Self.keywordHits(running.catalog, tenant, "zinc").count == 5 })
        #expect(Self.keywordHits(running.catalog, tenant, "obsolete").isEmpty)
        #expect(try await pending() == 0)
        let stored = try await Self.rows(postgres, tenant: tenant).map { String($0.split(separator: "|")[2]) }
        #expect(stored == ["zinc one", "zinc two", "zinc three", "zinc four", "zinc five", "copper"])
        let hit = try #require(try running.catalog.collection(.init(tenant: tenant, collection: "docs"))?.search(.init(text: "zinc five", topK: 1, mode: .keyword)).first)
        #expect(hit.chunkID == "manual#4")
        #expect(hit.metadata["meta.year"] == .number(2024))

        // Parts of v3 that never complete are dropped by v4, sent whole.
        var orphan = Self.event(tenant, "manual", version: "v3", texts: ["tin one"])
        (orphan.part, orphan.parts) = (0, 2)
        try await Self.publish(producer, topic, orphan)
        #expect(try await eventually(within: .seconds(60)) { try await pending() == 1 })
        try await Self.publish(producer, topic, Self.event(tenant, "manual", version: "v4", texts: ["lead one"]))
        #expect(try await eventually(within: .seconds(60)) { Self.keywordHits(running.catalog, tenant, "lead").count == 1 })
        #expect(try await pending() == 0)
        #expect(Self.keywordHits(running.catalog, tenant, "tin zinc").isEmpty)
    }

    @Test func badEventsGoToTheDLQWithAReasonAndTheRestIsApplied() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let topic = TestEnvironment.uniqueName("conduit.test.chunks")
        let dlq = TestEnvironment.uniqueName("conduit.test.dlq")
        let (postgres, producer, services) = try await Self.infrastructure()
        defer { for task in services { task.cancel() } }

        // The collection exists with 4 dimensions before any event arrives.
        #expect(try await PostgresChunkRepository(postgres: postgres).createCollection(.init(tenant: tenant, collection: "docs"), configuration: .init(dimension: 4)))
        try await producer.send(topic: topic, key: "\(tenant)/docs/x", value: Array("{\"schema_version\":1,\"op\":".utf8))
        try await Self.publish(producer, topic, Self.event(tenant, "good", version: "v1", texts: ["kept text"]))
        var wrongDimension = Self.event(tenant, "wide", version: "v1", texts: ["wide"])
        wrongDimension.chunks[0].embedding = [1, 0, 0, 0, 0, 0]
        try await Self.publish(producer, topic, wrongDimension)
        try await Self.publish(producer, topic, Self.event("", "anon", version: "v1", texts: ["x"]))
        var mixed = Self.event(tenant, "mixed", version: "v1", texts: ["a", "b"])
        mixed.chunks[1].embedding = [1, 0]
        try await Self.publish(producer, topic, mixed)
        var outOfRange = Self.event(tenant, "range", version: "v1", texts: ["r"])
        (outOfRange.part, outOfRange.parts) = (2, 2)
        try await Self.publish(producer, topic, outOfRange)
        var splitDelete = Self.event(tenant, "split", version: "v1", texts: [], op: .delete)
        (splitDelete.part, splitDelete.parts) = (0, 2)
        try await Self.publish(producer, topic, splitDelete)
        try await Self.publish(producer, topic, Self.event(tenant, "after", version: "v1", texts: ["after text"]))

        let running = Running(topic: topic, dlq: dlq, group: TestEnvironment.uniqueName("retriever"), postgres: postgres, producer: producer)
        defer { Task { await running.stop() } }
        #expect(try await eventually(within: .seconds(60)) { Self.keywordHits(running.catalog, tenant, "kept after").count == 2 })

        let reader = KafkaConsumer(configuration: .init(kafka: Self.kafka, groupID: TestEnvironment.uniqueName("reader"), topics: [dlq],
                                                        maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000), logger: Self.logger)
        let readerTask = Task { try await reader.run() }
        var reasons: [String] = []
        for try await message in reader.messages {
            let dead = try JSONDecoder().decode(DeadLetterEvent.self, from: Data(message.value))
            #expect(dead.service == "retriever")
            #expect(dead.sourceTopic == topic)
            reasons.append(dead.reason)
            if reasons.count == 6 { break }
        }
        readerTask.cancel()
        // Keys spread over partitions, so the DLQ's order is not the input's.
        for fragment in ["invalid indexed-document event", "6-dimensional vector; collection 'docs' has 4",
                         "'tenant' must not be empty", "mixed#1 has 2 dimensions", "part 2 of 2", "only schema 2 upserts come in parts"] {
            #expect(reasons.filter { $0.contains(fragment) }.count == 1, "\(fragment) in \(reasons)")
        }
        #expect(try await Self.rows(postgres, tenant: tenant).count == 2)
    }
}

/// Start-up from a snapshot plus the rows stored after it.
@Suite(.timeLimit(.minutes(2)))
struct SnapshotLoadingTests {
    @Test func theLoaderTakesOldVectorsFromTheSnapshotAndNewRowsFromPostgres() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let postgres = ChunkConsumerTests.postgres()
        let task = Task { try await postgres.run() }
        defer { task.cancel() }
        try await migrate(RetrieverMigrations.retriever, on: postgres, logger: ChunkConsumerTests.logger)
        let repository = PostgresChunkRepository(postgres: postgres)
        let directory = URL(fileURLWithPath: TestEnvironment.scratchDirectory("snapshots-\(tenant)"))
        let catalog = SearchCatalog()
        let store = SnapshotStore(directory: directory, interval: .seconds(3600), catalog: catalog, logger: ChunkConsumerTests.logger)

        func apply(_ event: IndexedDocumentEvent, offset: Int64) async throws {
            let outcome = try await repository.apply(event, position: .init(topic: "t", partition: 0, nextOffset: offset + 1), defaults: .init(dimension: 4))
            guard case .replaced(let configuration, let chunks) = outcome else { Issue.record("not applied: \(outcome)"); return }
            try catalog.collection(.init(tenant: tenant, collection: "docs"), orCreate: configuration).replaceDocument(event.docID, chunks: chunks)
        }
        try await apply(ChunkConsumerTests.event(tenant, "old", version: "v1", texts: ["ancient scrolls", "old maps"], axis: 0), offset: 0)
        await store.writeChanged()
        #expect(store.age(of: .init(tenant: tenant, collection: "docs")) != nil)
        // Tell the sources apart: Postgres now holds another direction for the old rows; only
        // the snapshot still has the original one.
        try await postgres.query("UPDATE retriever.chunks SET vector = $2 WHERE tenant_id = $1", tenant, Data(Float32Coding.bytes([0.01, 0.01, 0.01, 1])))
        try await apply(ChunkConsumerTests.event(tenant, "new", version: "v1", texts: ["fresh news"], axis: 2), offset: 1)

        let restarted = SearchCatalog()
        let reopened = SnapshotStore(directory: directory, interval: .seconds(3600), catalog: restarted, logger: ChunkConsumerTests.logger)
        try await IndexLoader(repository: repository, catalog: restarted, snapshots: reopened, engine: EngineExecutor(threads: 1), logger: ChunkConsumerTests.logger).load()
        let collection = try #require(restarted.collection(.init(tenant: tenant, collection: "docs")))
        #expect(collection.stats.chunks == 3)
        let hit = try #require(try collection.search(.init(vector: [1, 0, 0, 0], topK: 1, mode: .vector)).first)
        #expect(hit.chunkID == "old#0")
        #expect(hit.score > 0.99)
        #expect(try collection.search(.init(vector: [0, 0, 1, 0], topK: 1, mode: .vector)).first?.chunkID == "new#0")
        #expect(try collection.search(.init(text: "scrolls news", topK: 5, mode: .keyword)).count == 2)
    }
}
