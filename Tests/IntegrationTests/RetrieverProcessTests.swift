import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Testing
import TestSupport

/// The retriever binary with the embedder binary and the test stack: documents in through
/// Kafka, answers out through `/v1/search`; and a retriever killed mid-stream.
@Suite(.timeLimit(.minutes(4)))
struct RetrieverProcessTests {
    static let kafka = KafkaConfiguration(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "retriever-process-tests")
    static let logger = Logger(label: "retriever-process")

    static func postgres() -> PostgresClient {
        PostgresClient(configuration: .init(port: TestEnvironment.postgresPort, user: "conduit", database: "conduit"), logger: logger)
    }

    @Test func documentsFlowFromIndexingRequestsToHybridSearchWithQueryText() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let requests = TestEnvironment.uniqueName("conduit.test.requests")
        let chunks = TestEnvironment.uniqueName("conduit.test.chunks")
        let (embedder, retriever) = try ServiceProcessTests.indexingServices(portOffset: 40, requests: requests, chunks: chunks)
        defer { embedder.process.signal(SIGKILL); retriever.process.signal(SIGKILL) }
        try await embedder.waitUntilReady()
        try await retriever.waitUntilReady()

        let producer = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Self.logger)
        let producerTask = Task { try await producer.run() }
        defer { producerTask.cancel() }
        let documents: [(String, String, [String: JSONValue])] = [
            ("volcano", "Volcanoes erupt when magma rises through the crust and escapes as lava and ash.", ["topic": .string("geology"), "year": .number(2021)]),
            ("bread", "Sourdough bread rises because wild yeast and bacteria ferment the flour.", ["topic": .string("cooking"), "year": .number(2023)]),
            ("orbit", "Planets orbit the sun along elliptical paths described by Kepler's laws.", ["topic": .string("astronomy"), "year": .number(2020)]),
        ]
        for (id, text, metadata) in documents {
            let request = IndexingRequest(op: .upsert, tenant: tenant, collection: "kb", docID: id, text: text, metadata: metadata)
            try await producer.send(topic: requests, key: "\(tenant)/kb/\(id)", value: Array(try JSONEncoder().encode(request)))
        }
        let identity = TestIdentity.headers(tenant: tenant)
        #expect(try await eventually(within: .seconds(90)) {
            let stats = try await retriever.http.execute(HTTPRequest(url: retriever.base + "/v1/collections/kb", headers: identity))
            let body = try JSONSerialization.jsonObject(with: Data(try await stats.body.collect(upTo: 1 << 20))) as? [String: Any]
            return body?["documents"] as? Int == 3
        })

        // Query text is embedded by the embedder; the meaning, not the words, finds the volcano.
        let vector = try await retriever.post("/v1/search", #"{"collection":"kb","query":"molten rock from a mountain","mode":"vector","top_k":1}"#, headers: identity)
        #expect(vector.status == 200)
        #expect(vector.body.contains(#""doc_id":"volcano""#))
        let hybrid = try await retriever.post("/v1/search", #"{"collection":"kb","query":"yeast fermentation","top_k":3}"#, headers: identity)
        let results = try #require((try JSONSerialization.jsonObject(with: Data(hybrid.body.utf8)) as? [String: Any])?["results"] as? [[String: Any]])
        #expect(results.first?["doc_id"] as? String == "bread")
        let scores = try #require(results.first?["scores"] as? [String: Double])
        #expect(scores["vector"] != nil && scores["keyword"] != nil)
        #expect((results.first?["metadata"] as? [String: Any])?["topic"] as? String == "cooking")
        let filtered = try await retriever.post("/v1/search", #"{"collection":"kb","query":"rises","filter":{"field":"year","lt":2022},"top_k":3}"#, headers: identity)
        #expect(filtered.body.contains("volcano") && !filtered.body.contains("bread"))
        // Another tenant's request for the same collection name finds no collection.
        let stranger = try await retriever.post("/v1/search", #"{"collection":"kb","query":"bread"}"#, headers: TestIdentity.headers(tenant: tenant + "-x"))
        #expect(stranger.status == 404)
        // Only identities the gateway signed are believed: a bare tenant header, an identity
        // signed with another key, and a signed identity whose tenant was edited are all 401.
        let query = #"{"collection":"kb","query":"bread"}"#
        let unsigned = try await retriever.post("/v1/search", query, headers: [("X-Conduit-Tenant", tenant)])
        #expect(unsigned.status == 401 && unsigned.body.contains("invalid_internal_identity"))
        let requestID = "forged-1"
        let forger = try InternalKeyring(current: String(repeating: "not-the-shared-key-", count: 3))
        let foreign = try forger.sign(CallerIdentity(tenant: tenant, keyID: "k", roles: ["admin"]), requestID: requestID)
        let forged = try await retriever.post("/v1/search", query, headers: [("X-Request-Id", requestID), ("X-Conduit-Identity", foreign)])
        #expect(forged.status == 401)
        let genuine = try TestIdentity.keyring.sign(CallerIdentity(tenant: tenant + "-x", keyID: "k", roles: ["admin"]), requestID: requestID)
        let edited = try await retriever.post("/v1/search", query, headers: [("X-Request-Id", requestID), ("X-Conduit-Identity", Self.retargeted(genuine, tenant: tenant))])
        #expect(edited.status == 401)
        let otherRequest = try await retriever.post("/v1/search", query, headers: [("X-Request-Id", "another"), ("X-Conduit-Identity", genuine)])
        #expect(otherRequest.status == 401)

        // Through the gateway: the key decides the tenant, whatever headers the caller sends.
        let key = "cdt-test-\(UUID().uuidString)"
        let gateway = try ServiceProcessTests.RunningService("gateway", portOffset: 40, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": key, "CONDUIT_ADMIN_TENANT": tenant,
            "CONDUIT_RETRIEVER_URL": retriever.base, "CONDUIT_EMBEDDER_URL": embedder.base,
            "CONDUIT_GATEWAY_INDEXING_TOPIC": requests,
        ])
        defer { gateway.process.signal(SIGKILL) }
        try await gateway.waitUntilReady()
        let viaGateway = try await gateway.post("/v1/search", #"{"collection":"kb","query":"yeast fermentation","top_k":1}"#,
                                                headers: [("Authorization", "Bearer \(key)"), ("X-Conduit-Tenant", "someone-else")])
        #expect(viaGateway.status == 200)
        #expect(viaGateway.body.contains(#""doc_id":"bread""#))
        let embedded = try await gateway.post("/v1/embeddings", #"{"model":"all-minilm-l6-v2","input":"hello"}"#, headers: [("Authorization", "Bearer \(key)")])
        #expect(embedded.status == 200)
        #expect(embedded.body.contains(#""object":"embedding""#))
        #expect(try await gateway.post("/v1/search", #"{"collection":"kb","query":"x"}"#).status == 401)

        // A document sent to the gateway's /v1/documents is embedded, indexed and found.
        let accepted = try await gateway.post("/v1/documents", #"{"collection":"kb","doc_id":"tides","text":"Tides are caused by the gravitational pull of the moon on the oceans."}"#,
                                              headers: [("Authorization", "Bearer \(key)")])
        #expect(accepted.status == 202, "\(accepted.body)")
        #expect(try await eventually(within: .seconds(60)) {
            try await gateway.post("/v1/search", #"{"collection":"kb","query":"why does the moon move the sea","top_k":1}"#,
                                   headers: [("Authorization", "Bearer \(key)")]).body.contains(#""doc_id":"tides""#)
        })
    }

    /// A document at the gateway's limit (1,000,000 characters) goes through Kafka whole: its
    /// chunk event is many times the broker's message limit, so it travels in parts, and the
    /// retriever makes it searchable at once, first sentence to last. One over the limit is
    /// refused with 413 before anything is queued.
    @Test func aOneMegabyteDocumentBecomesSearchableThroughKafka() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let requests = TestEnvironment.uniqueName("conduit.test.requests")
        let chunks = TestEnvironment.uniqueName("conduit.test.chunks")
        let (embedder, retriever) = try ServiceProcessTests.indexingServices(portOffset: 200, requests: requests, chunks: chunks)
        defer { embedder.process.signal(SIGKILL); retriever.process.signal(SIGKILL) }
        let key = "cdt-test-\(UUID().uuidString)"
        let gateway = try ServiceProcessTests.RunningService("gateway", portOffset: 200, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": key, "CONDUIT_ADMIN_TENANT": tenant, "CONDUIT_RETRIEVER_URL": retriever.base,
            "CONDUIT_EMBEDDER_URL": embedder.base, "CONDUIT_GATEWAY_INDEXING_TOPIC": requests,
        ])
        defer { gateway.process.signal(SIGKILL) }
        for service in [embedder, retriever, gateway] { try await service.waitUntilReady() }
        let authorization = [(name: "Authorization", value: "Bearer \(key)")]

        let first = "Lighthouse keepers in the northern archipelago trimmed their lamp wicks every dusk."
        let last = "The saffron and cardamom pastry recipe was hidden under the observatory floor."
        let text = Self.prose(characters: 1_000_000, first: first, last: last)
        #expect(text.unicodeScalars.count == 1_000_000)
        func document(_ text: String) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: ["collection": "big", "doc_id": "almanac", "text": text]), as: UTF8.self)
        }
        let tooLong = try await gateway.post("/v1/documents", try document(text + "!"), headers: authorization)
        #expect(tooLong.status == 413 && tooLong.body.contains("document_too_large"), "\(tooLong.body)")
        let accepted = try await gateway.post("/v1/documents", try document(text), headers: authorization)
        #expect(accepted.status == 202, "\(accepted.body)")

        func stats() async throws -> [String: Any]? {
            let response = try await retriever.http.execute(HTTPRequest(url: retriever.base + "/v1/collections/big", headers: TestIdentity.headers(tenant: tenant)))
            return try JSONSerialization.jsonObject(with: Data(try await response.body.collect(upTo: 1 << 20))) as? [String: Any]
        }
        let indexed = try await eventually(within: .seconds(200)) { try await stats()?["documents"] as? Int == 1 }
        #expect(indexed, "not indexed; embedder log: \(embedder.logText.suffix(1500)) retriever log: \(retriever.logText.suffix(1500))")
        let chunkCount = try #require(try await stats()?["chunks"] as? Int)
        #expect(chunkCount > 1000)
        for (query, expected) in [("saffron cardamom pastry observatory", "saffron"), ("lighthouse keepers lamp wicks archipelago", "Lighthouse")] {
            // Words found in one chunk only: keyword search names it whatever 1,180 similar chunks do to vector ranks.
            let found = try await gateway.post("/v1/search", #"{"collection":"big","query":"\#(query)","top_k":1,"mode":"keyword"}"#, headers: authorization)
            #expect(found.status == 200)
            #expect(found.body.contains(#""doc_id":"almanac""#) && found.body.contains(expected), "\(found.body.prefix(400))")
        }
        // Nothing is left waiting once the version is whole.
        let postgres = Self.postgres()
        let task = Task { try await postgres.run() }
        defer { task.cancel() }
        let pending: Int64 = try await postgres.query("SELECT count(*) FROM retriever.pending_parts WHERE tenant_id = $1", tenant)[0].decode(at: 0)
        #expect(pending == 0)
    }

    /// Plain English of exactly `characters` characters from a fixed seed, starting with `first`
    /// and ending with `last`: sentences a tokenizer and a chunker treat as ordinary text.
    static func prose(characters: Int, first: String, last: String) -> String {
        let words = """
            river market winter garden engine letter window morning harbor season mountain village teacher \
            station library kitchen machine painter forest bridge signal valley island doctor farmer lantern \
            compass journey weather castle meadow orchard factory chapter theory canvas pencil violin harvest \
            quietly slowly often always carefully gently brightly early later together across beneath beyond \
            builds carries follows measures gathers repairs describes remembers explains watches opens closes \
            the a every each one old new small large bright distant narrow ancient modern careful patient
            """.split(whereSeparator: \.isWhitespace).map(String.init)
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ bound: Int) -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state % UInt64(bound))
        }
        var text = first + " "
        let budget = characters - last.utf8.count
        // ASCII only, so bytes count characters (and `count` on a growing string would be quadratic).
        while text.utf8.count < budget {
            var sentence = (0..<(8 + next(9))).map { _ in words[next(words.count)] }.joined(separator: " ")
            sentence = sentence.prefix(1).uppercased() + sentence.dropFirst() + "."
            text += sentence + (next(6) == 0 ? "\n\n" : " ")
        }
        return String(decoding: text.utf8.prefix(budget - 1), as: UTF8.self) + " " + last
    }

    @Test func aRetrieverKilledMidStreamLosesNothingAndHalfAppliesNothing() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let chunks = TestEnvironment.uniqueName("conduit.test.chunks")
        let group = TestEnvironment.uniqueName("retriever-restart")
        let postgres = Self.postgres()
        let producer = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Self.logger)
        let tasks = [Task { try await postgres.run() }, Task { try await producer.run() }]
        defer { for task in tasks { task.cancel() } }

        // 300 documents of 1–8 chunks each; document n has n % 8 + 1 chunks.
        let documentCount = 300
        var events: [IndexedDocumentEvent] = []
        for number in 0..<documentCount {
            var event = IndexedDocumentEvent(op: .upsert, tenant: tenant, collection: "bulk", docID: "doc\(number)", version: "v1")
            event.chunks = (0...(number % 8)).map { index in
                // A deterministic pseudo-random direction per chunk (xorshift seeded by its position).
                var state = UInt64(number * 16 + index + 1) &* 0x9E37_79B9_7F4A_7C15
                var vector = (0..<384).map { _ -> Float in
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    return Float(Int64(bitPattern: state) % 1000) / 1000
                }
                let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
                vector = vector.map { $0 / norm }
                return .init(id: "doc\(number)#\(index)", index: index, text: "document \(number) part \(index)", start: 0, end: 10,
                             heading: nil, contentHash: "h", embedding: vector)
            }
            events.append(event)
        }
        // Two thirds before the first start; the rest flows in while the second one starts and
        // loads its indexes.
        for event in events.prefix(200) {
            try await producer.send(topic: chunks, key: event.key, value: Array(try EventCoding.encoder().encode(event)))
        }
        let environment = ["CONDUIT_RETRIEVER_CHUNKS_TOPIC": chunks, "CONDUIT_RETRIEVER_GROUP": group]
        func storedDocuments() async throws -> Int {
            try await postgres.query("SELECT count(*) FROM retriever.documents WHERE tenant_id = $1", tenant)[0].decode(Int.self, at: 0)
        }
        let first = try ServiceProcessTests.RunningService("retriever", portOffset: 41, extraEnvironment: environment)
        try await first.waitUntilReady()
        #expect(try await eventually(within: .seconds(60)) { try await storedDocuments() >= 20 })
        first.process.signal(SIGKILL)
        _ = await first.process.wait()
        let atKill = try await storedDocuments()
        #expect(atKill < documentCount, "the kill came after everything was applied; nothing was interrupted")

        let lateEvents = Array(events.dropFirst(200))
        let late = Task {
            for event in lateEvents {
                try await producer.send(topic: chunks, key: event.key, value: Array(try EventCoding.encoder().encode(event)))
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let second = try ServiceProcessTests.RunningService("retriever", portOffset: 41, extraEnvironment: environment)
        defer { second.process.signal(SIGKILL) }
        try await second.waitUntilReady()
        try await late.value
        let complete = try await eventually(within: .seconds(120)) { try await storedDocuments() == documentCount }
        let stored = try await storedDocuments()
        #expect(complete, "stored \(stored) of \(documentCount) (\(atKill) when killed)")
        // Every document whole: exactly its chunk count, no strays, no duplicates.
        let counts = try await postgres.query(
            "SELECT doc_id, count(*) FROM retriever.chunks WHERE tenant_id = $1 GROUP BY doc_id", tenant
        ).map { (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1)) }
        #expect(counts.count == documentCount)
        for (document, count) in counts {
            #expect(count == Int(document.dropFirst(3))! % 8 + 1, "\(document) has \(count) chunks")
        }
        // The restarted index answers for documents applied before and after the kill.
        let identity = TestIdentity.headers(tenant: tenant)
        let response = try await second.http.execute(HTTPRequest(url: second.base + "/v1/collections/bulk", headers: identity))
        let stats = String(decoding: try await response.body.collect(upTo: 1 << 20), as: UTF8.self)
        #expect(stats.contains("\"chunks\":\(events.reduce(0) { $0 + $1.chunks.count })"))
        for number in [0, documentCount - 1] {
            let vector = events[number].chunks[0].embedding.map { "\($0)" }.joined(separator: ",")
            let hit = try await second.post("/v1/search", #"{"collection":"bulk","vector":[\#(vector)],"mode":"vector","top_k":1}"#, headers: identity)
            #expect(hit.body.contains("\"chunk_id\":\"doc\(number)#0\""), "\(hit.body.prefix(300))")
        }
    }
}

extension RetrieverProcessTests {
    /// `token` with the tenant line of its signed form replaced and the signature kept: what a
    /// forger holding one genuine token could send.
    static func retargeted(_ token: String, tenant: String) -> String {
        let parts = token.split(separator: ".").map(String.init)
        func decode(_ text: String) -> Data {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            return Data(base64Encoded: base64)!
        }
        var lines = String(decoding: decode(parts[0]), as: UTF8.self).components(separatedBy: "\n")
        lines[3] = tenant
        let encoded = Data(lines.joined(separator: "\n").utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return encoded + "." + parts[1]
    }
}
