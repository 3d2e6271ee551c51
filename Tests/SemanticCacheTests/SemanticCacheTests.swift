import Foundation
import Logging
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
        let cache = SemanticCache(redis: redis, configuration: .init(ttl: ttl, pollInterval: .milliseconds(50)), logger: logger)
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
