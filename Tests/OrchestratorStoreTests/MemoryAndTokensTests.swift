import ConduitProtocol
import Foundation
import HTTP
import Logging
@testable import Orchestrator
import Providers
import Redis
import Testing
import TestSupport

/// Token counting through a llama.cpp-style `/tokenize` server, and the session store against
/// the test stack's Redis.
@Suite(.timeLimit(.minutes(2)))
struct MemoryAndTokensTests {
    static let logger = Logger(label: "memory-test")

    @Test func countsComeFromTheServersTokenizerAndFallBackToTheEstimate() async throws {
        // Speaks llama.cpp's documented format: {"content": text} → {"tokens": [ids]}; one token per word here.
        let server = try TestHTTPServer { request, connection in
            guard request.path == "/tokenize", let text = JSONValue.parse(request.body)?["content"]?.stringValue, !text.hasPrefix("fail") else {
                connection.respond(status: 500, body: [])
                return
            }
            let ids = text.split(separator: " ").indices.map { String($0) }.joined(separator: ",")
            connection.respond(headers: ["Content-Type": "application/json"], body: Array(#"{"tokens":[\#(ids)]}"#.utf8))
        }
        let http = HTTPClient(logger: Self.logger)
        let deployment = Deployment(id: "d", provider: .openAI, upstreamModel: "m", baseURL: server.baseURL + "/v1", tokenizer: .llamaCpp)
        let counter = TokenCounter(deployment: deployment, tokenizer: LlamaCppTokenizer(http: http))
        #expect(await counter.count(["one two three", "four", "a b c d e f"]) == [3, 1, 6])
        #expect(await counter.count(messages: [.user("one two"), .assistant("three")]) == 3 + 2 * TokenCounter.perMessageOverhead)

        // No tokenizer: a conservative estimate (3 bytes a token).
        let estimate = TokenCounter(deployment: Deployment(id: "e", provider: .openAI, upstreamModel: "m", baseURL: "http://127.0.0.1:1/v1"), tokenizer: LlamaCppTokenizer(http: http))
        #expect(await estimate.count("123456789") == 3)
        // A text the server fails to count is estimated.
        #expect(await counter.count(["fail on this text", "one"]) == [TokenCounter.estimate("fail on this text"), 1])
        await http.shutdown()
    }

    @Test func sessionsAppendCompactOnlyWhatTheyLoadedAndExpire() async throws {
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 1), logger: Self.logger)
        let store = RedisSessionStore(redis: redis, ttl: .seconds(120))
        let tenant = TestEnvironment.uniqueName("tenant"), id = "s1"
        try await store.append([.user("a"), .assistant("b"), .user("c"), .assistant("d")], tenant: tenant, id: id)
        let loaded = try await store.load(tenant: tenant, id: id)
        #expect(loaded.messages.compactMap { $0.content?.plainText } == ["a", "b", "c", "d"])
        #expect(try await redis.pttl("sess:\(tenant):\(id)").map { $0 > 100_000 } == true)

        // Another tenant's session of the same id is another key.
        #expect(try await store.load(tenant: tenant + "-x", id: id).messages.isEmpty)

        // Compaction replaces the first two only while they are still the first two.
        #expect(try await store.compact(replacing: Array(loaded.raw.prefix(2)), with: "sum", tenant: tenant, id: id))
        let compacted = try await store.load(tenant: tenant, id: id)
        #expect(compacted.messages.map(\.name) == [Sessions.summaryName, nil, nil])
        #expect(compacted.messages.compactMap { $0.content?.plainText } == ["sum", "c", "d"])
        #expect(try await store.compact(replacing: Array(loaded.raw.prefix(2)), with: "stale", tenant: tenant, id: id) == false)
        #expect(try await store.load(tenant: tenant, id: id).messages.count == 3)

        #expect(try await store.delete(tenant: tenant, id: id))
        #expect(try await store.delete(tenant: tenant, id: id) == false)
        #expect(throws: (any Error).self) { try Sessions.validate("has space", param: "p") }
        #expect(throws: (any Error).self) { try Sessions.validate(String(repeating: "x", count: 129), param: "p") }
        try Sessions.validate("user-42:chat.1_a", param: "p")
        await redis.shutdown()
    }
}

extension MemoryAndTokensTests {
    /// A session whose summaries never succeed still stops growing at its cap, oldest first,
    /// and a summary at the front survives the trim.
    @Test func sessionsStayWithinTheirCapEvenWithoutSummaries() async throws {
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 1), logger: Self.logger)
        let store = RedisSessionStore(redis: redis, ttl: .seconds(120), maxMessages: 6)
        let tenant = TestEnvironment.uniqueName("tenant")
        for turn in 0..<10 {
            try await store.append([.user("q\(turn)"), .assistant("a\(turn)")], tenant: tenant, id: "capped")
        }
        let capped = try await store.load(tenant: tenant, id: "capped").messages.compactMap { $0.content?.plainText }
        #expect(capped == ["q7", "a7", "q8", "a8", "q9", "a9"])

        let loaded = try await store.load(tenant: tenant, id: "capped")
        #expect(try await store.compact(replacing: Array(loaded.raw.prefix(2)), with: "summary", tenant: tenant, id: "capped"))
        try await store.append([.user("q10"), .assistant("a10")], tenant: tenant, id: "capped")
        let kept = try await store.load(tenant: tenant, id: "capped").messages
        #expect(kept.count == 6)
        #expect(kept.first?.name == Sessions.summaryName)
        #expect(kept.compactMap { $0.content?.plainText } == ["summary", "a8", "q9", "a9", "q10", "a10"])
        await redis.shutdown()
    }
}
