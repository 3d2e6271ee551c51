import ConduitKit
import Foundation
import Logging
import Prometheus
import Redis
import SemanticCache
import Testing
import TestSupport

/// The cache against the test stack's Redis, each test on its own tenant.
@Suite(.timeLimit(.minutes(2)))
struct SemanticCacheTests {
    static let logger = Logger(label: "semantic-cache-test")

    static func redis() -> RedisClient {
        RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 2), logger: logger)
    }

    /// A cache with its log follower running, stopped when `body` returns.
    static func withCache<T>(ttl: Duration = .seconds(600), _ body: (SemanticCache, RedisClient) async throws -> T) async throws -> T {
        let redis = redis()
        let cache = SemanticCache(redis: redis, configuration: .init(ttl: ttl, pollInterval: .milliseconds(50)), engine: EngineExecutor(threads: 1), logger: logger)
        let running = Task { try await cache.run() }
        defer { running.cancel() }
        return try await body(cache, redis)
    }

    /// A random unit vector, and one at cosine `similarity` from it.
    static func pair(similarity: Float, dimension: Int = 64) -> ([Float], [Float]) {
        var generator = SystemRandomNumberGenerator()
        func unit(_ v: [Float]) -> [Float] {
            let norm = (v.reduce(0) { $0 + $1 * $1 }).squareRoot()
            return v.map { $0 / norm }
        }
        let a = unit((0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) })
        var noise = unit((0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) })
        let along = zip(noise, a).reduce(0) { $0 + $1.0 * $1.1 }
        noise = unit(zip(noise, a).map { $0 - along * $1 })  // orthogonal to a
        let b = zip(a, noise).map { similarity * $0 + (1 - similarity * similarity).squareRoot() * $1 }
        return (a, b)
    }

    static func payload(_ text: String) -> [UInt8] { Array(#"{"answer":"\#(text)"}"#.utf8) }

    @Test func aCloseQuestionInTheSameContextHitsAndOthersMiss() async throws {
        try await Self.withCache { cache, _ in
            let tenant = TestEnvironment.uniqueName("t")
            let (stored, close) = Self.pair(similarity: 0.97)
            let (_, far) = Self.pair(similarity: 0.5)
            try await cache.store(tenant: tenant, context: "ctx1", question: "How do I enable 2FA?", vector: stored, payload: Self.payload("Settings"))

            guard case .hit(let hit) = try await cache.lookup(tenant: tenant, context: "ctx1", question: "How can I enable 2FA?", vector: close, threshold: 0.95) else {
                Issue.record("expected a hit")
                return
            }
            #expect(hit.payload == Self.payload("Settings"))
            #expect(abs(hit.similarity - 0.97) < 0.01)
            // Below the threshold, in another context, for another tenant: misses.
            if case .hit = try await cache.lookup(tenant: tenant, context: "ctx1", question: "How can I enable 2FA?", vector: close, threshold: 0.98) { Issue.record("hit above threshold") }
            if case .hit = try await cache.lookup(tenant: tenant, context: "ctx2", question: "How do I enable 2FA?", vector: stored, threshold: 0.95) { Issue.record("hit in another context") }
            if case .hit = try await cache.lookup(tenant: tenant + "-other", context: "ctx1", question: "How do I enable 2FA?", vector: stored, threshold: 0.95) { Issue.record("hit for another tenant") }
            let unrelated = try await cache.lookup(tenant: tenant, context: "ctx1", question: "Where is the invoice?", vector: Self.pair(similarity: 1).0, threshold: 0.95)
            if case .hit = unrelated { Issue.record("hit on an unrelated vector") }
            _ = far
        }
    }

    @Test func theGuardRefusesANegatedQuestionEvenAtSimilarityOne() async throws {
        try await Self.withCache { cache, _ in
            let tenant = TestEnvironment.uniqueName("t")
            let (vector, _) = Self.pair(similarity: 1)
            try await cache.store(tenant: tenant, context: "c", question: "How do I enable 2FA?", vector: vector, payload: Self.payload("enable"))
            guard case .miss(let similarity, let rejection) = try await cache.lookup(tenant: tenant, context: "c", question: "How do I disable 2FA?", vector: vector, threshold: 0.95) else {
                Issue.record("the negated question was served the cached answer")
                return
            }
            #expect((similarity ?? 0) > 0.999)
            #expect(rejection != nil)
        }
    }

    @Test func anotherReplicaLearnsOfEntriesAndPurgesThroughTheLog() async throws {
        try await Self.withCache { first, redis in
            try await Self.withCache { second, _ in
                let tenant = TestEnvironment.uniqueName("t")
                let (vector, close) = Self.pair(similarity: 0.99)
                try await first.store(tenant: tenant, context: "c", question: "What is the refund policy?", vector: vector, payload: Self.payload("30 days"))
                #expect(try await eventually(within: .seconds(60)) {
                    if case .hit(let hit) = try await second.lookup(tenant: tenant, context: "c", question: "What's the refund policy?", vector: close, threshold: 0.95) {
                        return hit.payload == Self.payload("30 days")
                    }
                    return false
                })
                // A replica started now loads the entry from Redis.
                let loaded = try await Self.withCache { third, _ in
                    try await eventually(within: .seconds(60)) {
                        if case .hit = try await third.lookup(tenant: tenant, context: "c", question: "What is the refund policy?", vector: vector, threshold: 0.95) { return true }
                        return false
                    }
                }
                #expect(loaded)
                // A purge on the second replica empties Redis and the first replica's index.
                let deleted = try await second.purge(tenant: tenant)
                #expect(deleted == 1)
                #expect(try await redis.get("cache:\(tenant):c:x") == nil)
                #expect(try await eventually(within: .seconds(60)) {
                    if case .miss = try await first.lookup(tenant: tenant, context: "c", question: "What is the refund policy?", vector: vector, threshold: 0.95) { return true }
                    return false
                })
            }
        }
    }

    @Test func entriesExpire() async throws {
        try await Self.withCache(ttl: .seconds(1)) { cache, _ in
            let tenant = TestEnvironment.uniqueName("t")
            let (vector, _) = Self.pair(similarity: 1)
            try await cache.store(tenant: tenant, context: "c", question: "Ping?", vector: vector, payload: Self.payload("pong"))
            try await Task.sleep(for: .milliseconds(1600))
            if case .hit = try await cache.lookup(tenant: tenant, context: "c", question: "Ping?", vector: vector, threshold: 0.9) {
                Issue.record("an expired entry was served")
            }
        }
    }
}

extension SemanticCacheTests {
    /// Every session turn is a new context: 10,000 of them keep memory within the bounds, the
    /// least recently used going first, and the newest still answers.
    @Test func memoryStaysBoundedAcrossTenThousandContexts() async throws {
        let redis = Self.redis()
        let registry = PrometheusCollectorRegistry()
        let cache = SemanticCache(redis: redis, configuration: .init(ttl: .seconds(120), maxEntries: 500, maxBytes: 1 << 20), engine: EngineExecutor(threads: 1), registry: registry, logger: Self.logger)
        let tenant = TestEnvironment.uniqueName("tenant")
        var peakEntries = 0, peakContexts = 0, peakBytes = 0
        var last: (context: String, vector: [Float]) = ("", [])
        for number in 0..<10_000 {
            let (vector, _) = Self.pair(similarity: 0.99, dimension: 8)
            let context = "ctx\(number)"
            try await cache.store(tenant: tenant, context: context, question: "Question number \(number)?", vector: vector, payload: Array("answer \(number)".utf8))
            if number % 100 == 0 || number == 9_999 {
                peakEntries = max(peakEntries, cache.count)
                peakContexts = max(peakContexts, cache.contextCount)
                peakBytes = max(peakBytes, cache.memoryBytes)
            }
            last = (context, vector)
        }
        #expect(peakEntries <= 500 && peakContexts <= 500 && peakBytes <= 1 << 20, "entries \(peakEntries), contexts \(peakContexts), bytes \(peakBytes)")
        guard case .hit(let hit) = try await cache.lookup(tenant: tenant, context: last.context, question: "Question number 9999?", vector: last.vector, threshold: 0.95) else {
            Issue.record("the newest context no longer answers")
            return
        }
        #expect(String(decoding: hit.payload, as: UTF8.self) == "answer 9999")
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let metrics = String(decoding: buffer, as: UTF8.self)
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        // One entry a context: every context not held now was evicted, and the gauges agree.
        #expect(value("semantic_cache_evicted_contexts_total") == Double(10_000 - cache.contextCount), "\(metrics)")
        #expect(value("semantic_cache_entries") == Double(cache.count))
        #expect(value("semantic_cache_contexts") == Double(cache.contextCount))
        #expect(cache.count >= 400, "evictions keep most of the bound in use")
        await redis.shutdown()
    }

    /// Expired entries leave memory on the sweep, without a lookup, and empty indexes go too.
    @Test func theSweepRemovesExpiredEntriesAndEmptyIndexes() async throws {
        let redis = Self.redis()
        // A TTL far longer than the stores can take on a loaded test pool (they once took 38 s),
        // so only the sweeps' clocks decide what has expired.
        let cache = SemanticCache(redis: redis, configuration: .init(ttl: .seconds(3600)), engine: EngineExecutor(threads: 1), logger: Self.logger)
        let tenant = TestEnvironment.uniqueName("tenant")
        for number in 0..<20 {
            let (vector, _) = Self.pair(similarity: 0.99, dimension: 8)
            try await cache.store(tenant: tenant, context: "c\(number % 4)", question: "q\(number)", vector: vector, payload: Array("a".utf8))
        }
        #expect(cache.count == 20 && cache.contextCount == 4)
        cache.sweep(now: .now + .seconds(1800))
        #expect(cache.count == 20)
        cache.sweep(now: .now + .seconds(3601))
        #expect(cache.count == 0 && cache.contextCount == 0 && cache.memoryBytes == 0)
        await redis.shutdown()
    }
}

extension SemanticCacheTests {
    /// A restarted replica answers from what it has read from Redis before any graph is built:
    /// the loaded entries are searched by exact scan until the background build has moved them
    /// into their graph, and the answers are the same after. (Building 100,000 entries took
    /// ~80 s, and every lookup missed until then.)
    @Test func aRestartedReplicaHitsBeforeItsGraphIsBuilt() async throws {
        let redis = Self.redis()
        let tenant = TestEnvironment.uniqueName("tenant")
        let count = 3000
        var vectors: [[Float]] = []
        var commands: [RedisCommand] = []
        for number in 0..<count {
            let (vector, _) = Self.pair(similarity: 1)
            vectors.append(vector)
            commands.append(RedisCommand("SET", SemanticCache.entryKey(tenant, "c", "e\(number)"),
                                         try SemanticCache.encodedEntry(question: "What is the status of order \(number)?", vector: vector, payload: Self.payload("order \(number)")),
                                         "EX", 600))
        }
        _ = try await redis.pipeline(commands)
        let cache = SemanticCache(redis: redis, configuration: .init(ttl: .seconds(600)), engine: EngineExecutor(threads: 1), logger: Self.logger)
        try await cache.load()
        #expect(cache.pendingCount >= count)

        func answer(_ number: Int) async throws -> [UInt8]? {
            let question = "What is the status of order \(number)?"
            guard case .hit(let hit) = try await cache.lookup(tenant: tenant, context: "c", question: question, vector: vectors[number], threshold: 0.95) else { return nil }
            return hit.payload
        }
        let sample = [0, 1, count / 2, count - 1]
        for number in sample { #expect(try await answer(number) == Self.payload("order \(number)")) }

        try await cache.buildGraphs()
        #expect(cache.pendingCount == 0)
        for number in sample { #expect(try await answer(number) == Self.payload("order \(number)")) }
        _ = try await cache.purge(tenant: tenant)
    }
}
