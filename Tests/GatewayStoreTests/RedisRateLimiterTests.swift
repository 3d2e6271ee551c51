import ConduitKit
import ConduitRedis
import Foundation
@testable import Gateway
import Logging
import Prometheus
import Redis
import Testing
import TestSupport

/// The limiter's script over the test stack's Redis: a request window shared by two clients as
/// by two gateway replicas, GCRA's refill for tokens, all-or-nothing across buckets, and a
/// settlement. Periods are long where a loaded machine's pauses must not refill a bucket.
@Suite(.timeLimit(.minutes(1)))
struct RedisRateLimiterTests {
    let clients = (0..<2).map { _ in
        RedisClient(configuration: try! ServiceConfiguration(service: .gateway).redis, registry: PrometheusCollectorRegistry(), logger: Logger(label: "rl"))
    }

    func withReplicas(_ body: ([RedisRateLimiter]) async throws -> Void) async throws {
        let tasks = clients.map { client in Task { try await client.run() } }
        defer { for task in tasks { task.cancel() } }
        try await body(clients.map { RedisRateLimiter(redis: $0) })
    }

    static func bucket(_ kind: RateBucket.Kind, limit: Int, period: Duration = .seconds(600), cost: Int = 1, key: String? = nil) -> RateBucket {
        RateBucket(key: key ?? "rl:" + TestEnvironment.uniqueName("key") + (kind == .requests ? ":rpm" : ":tpm"), kind: kind, limit: limit, period: period, cost: cost)
    }

    static func id() -> String { UUID().uuidString }

    @Test func twoReplicasShareOneRequestWindowThatNeverHoldsMoreThanItsLimit() async throws {
        try await withReplicas { replicas in
            let window = Self.bucket(.requests, limit: 5)
            var remaining: [Int] = []
            let first = ContinuousClock.now
            for index in 0..<5 {
                let verdict = try await replicas[index % 2].acquire([window], id: Self.id())
                #expect(verdict.allowed)
                remaining.append(verdict.decisions[0].remaining)
                #expect(verdict.decisions[0].resetAfter > .seconds(590) && verdict.decisions[0].resetAfter <= .seconds(600))
            }
            #expect(remaining == [4, 3, 2, 1, 0])
            let refused = try await replicas[1].acquire([window], id: Self.id())
            #expect(!refused.allowed && refused.decisions[0].remaining == 0)
            // The first request leaves the window ten minutes after it came.
            let retry = try #require(refused.retryAfter)
            #expect(retry > .seconds(600) - (ContinuousClock.now - first) - .milliseconds(100) && retry <= .seconds(600))
            let ttl = try #require(try await clients[0].pttl(window.key))
            #expect(ttl > 0 && ttl <= 600_000)

            // A short window: its requests leave it when the period has passed, not before (checked
            // only when the loaded machine took less than the period for the three calls).
            let short = Self.bucket(.requests, limit: 2, period: .seconds(5))
            let started = ContinuousClock.now
            #expect(try await replicas[0].acquire([short], id: Self.id()).allowed)
            #expect(try await replicas[1].acquire([short], id: Self.id()).allowed)
            let full = try await replicas[0].acquire([short], id: Self.id())
            if ContinuousClock.now - started < .seconds(4) {
                let wait = try #require(full.retryAfter)
                #expect(!full.allowed && wait <= .seconds(5))
                try await Task.sleep(for: wait + .milliseconds(50))
            } else {
                try await Task.sleep(for: .seconds(5))
            }
            #expect(try await replicas[1].acquire([short], id: Self.id()).allowed)
        }
    }

    @Test func tokensRefillAtTheLimitsRateAndASettlementGivesThemBack() async throws {
        try await withReplicas { replicas in
            let key = "rl:" + TestEnvironment.uniqueName("key") + ":tpm"
            let all = try await replicas[0].acquire([Self.bucket(.tokens, limit: 10, cost: 10, key: key)], id: Self.id())
            #expect(all.allowed && all.decisions[0].remaining == 0)
            let first = try await replicas[1].acquire([Self.bucket(.tokens, limit: 10, key: key)], id: Self.id())
            let firstWait = try #require(first.retryAfter)
            #expect(!first.allowed && firstWait <= .seconds(60))
            try await Task.sleep(for: .seconds(1))
            let later = try await replicas[0].acquire([Self.bucket(.tokens, limit: 10, key: key)], id: Self.id())
            let laterWait = try #require(later.retryAfter)
            #expect(laterWait <= firstWait - .milliseconds(950))

            // 800 of 1000 reserved, 700 given back: 900 left (a ten-hour period: nothing refills meanwhile).
            let reserved = Self.bucket(.tokens, limit: 1000, period: .seconds(36_000), cost: 800)
            #expect(try await replicas[0].acquire([reserved], id: Self.id()).decisions[0].remaining == 200)
            try await replicas[1].settle([reserved], delta: -700)
            var probe = reserved
            probe.cost = 1
            let left = try await replicas[0].acquire([probe], id: Self.id()).decisions[0].remaining
            #expect(left >= 895 && left <= 899)
            // A refund past full deletes the bucket.
            try await replicas[0].settle([reserved], delta: -5000)
            #expect(try await clients[0].send(RedisCommand("EXISTS", reserved.key)).int == 0)
        }
    }

    @Test func aRequestUnderSeveralLimitsTakesFromAllOrFromNone() async throws {
        try await withReplicas { replicas in
            let requests = Self.bucket(.requests, limit: 5)
            var tokens = Self.bucket(.tokens, limit: 100, cost: 100)
            #expect(try await replicas[0].acquire([tokens], id: Self.id()).allowed)
            tokens.cost = 50
            let refused = try await replicas[1].acquire([requests, tokens], id: Self.id())
            #expect(!refused.allowed)
            // The request window had room and says so; it took nothing.
            #expect(refused.decisions[0].allowed && refused.decisions[0].remaining == 5)
            #expect(!refused.decisions[1].allowed)
            #expect(try await replicas[0].acquire([requests], id: Self.id()).decisions[0].remaining == 4)
        }
    }
}

/// In-flight buckets in the same script: places taken up to the limit, given back, and lapsing.
@Suite(.timeLimit(.minutes(1)))
struct RedisInFlightTests {
    @Test func placesAreTakenUpToTheLimitGivenBackAndLapse() async throws {
        let redis = RedisClient(configuration: try ServiceConfiguration(service: .gateway).redis, logger: Logger(label: "test"))
        let task = Task { try await redis.run() }
        defer { task.cancel() }
        let limiter = RedisRateLimiter(redis: redis)
        let slot = RateBucket(key: "rl:" + TestEnvironment.uniqueName("conc") + ":conc", kind: .inFlight, limit: 2, period: .seconds(60), cost: 1)
        #expect(try await limiter.acquire([slot], id: "a").decisions[0].remaining == 1)
        #expect(try await limiter.acquire([slot], id: "b").decisions[0].remaining == 0)
        let full = try await limiter.acquire([slot], id: "c")
        #expect(!full.allowed && full.retryAfter == .seconds(1))
        try await limiter.release([slot], id: "a")
        #expect(try await limiter.acquire([slot], id: "c").allowed)
        // A place never given back (its replica died) frees itself after its lifetime.
        let lost = RateBucket(key: "rl:" + TestEnvironment.uniqueName("conc") + ":conc", kind: .inFlight, limit: 1, period: .seconds(3), cost: 1)
        let taken = ContinuousClock.now
        #expect(try await limiter.acquire([lost], id: "x").allowed)
        let again = try await limiter.acquire([lost], id: "y").allowed
        // (Held still, unless a loaded machine took the whole lifetime between the two calls.)
        if ContinuousClock.now - taken < .seconds(2) { #expect(!again) }
        try await Task.sleep(for: .milliseconds(3200))
        #expect(try await limiter.acquire([lost], id: "y").allowed)
    }
}
