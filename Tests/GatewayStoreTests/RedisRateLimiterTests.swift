import ConduitKit
import ConduitRedis
import Foundation
@testable import Gateway
import Logging
import Prometheus
import Redis
import Testing
import TestSupport

/// GCRA over the test stack's Redis: the limit, the burst, the refill, and one bucket shared
/// by two clients as by two gateway replicas. Periods are long enough that a loaded machine's
/// pauses between calls cannot refill a bucket by surprise.
@Suite(.timeLimit(.minutes(1)))
struct RedisRateLimiterTests {
    @Test func twoReplicasShareOneBucketThatRefillsAtTheLimitsRate() async throws {
        let configuration = try ServiceConfiguration(service: .gateway).redis
        let clients = (0..<2).map { _ in RedisClient(configuration: configuration, registry: PrometheusCollectorRegistry(), logger: Logger(label: "rl")) }
        let tasks = clients.map { client in Task { try await client.run() } }
        defer { for task in tasks { task.cancel() } }
        let replicas = clients.map { RedisRateLimiter(redis: $0) }
        let bucket = "rl:" + TestEnvironment.uniqueName("key") + ":rpm"
        // Five per ten minutes: one every 2 minutes, bursts of five (slow enough that nothing
        // refills while a loaded test machine takes its time).
        var remaining: [Int] = []
        for index in 0..<5 {
            let decision = try await replicas[index % 2].acquire(bucket, limit: 5, period: .seconds(600), cost: 1)
            #expect(decision.allowed)
            remaining.append(decision.remaining)
        }
        #expect(remaining == [4, 3, 2, 1, 0])
        let refused = try await replicas[1].acquire(bucket, limit: 5, period: .seconds(600), cost: 1)
        #expect(!refused.allowed)
        let retry = try #require(refused.retryAfter)
        #expect(retry > .zero && retry <= .seconds(120))
        #expect(refused.resetAfter <= .seconds(600) && refused.resetAfter >= retry)
        // The bucket expires once it would be full again: nothing is left behind in Redis.
        let ttl = try #require(try await clients[0].pttl(bucket))
        #expect(ttl > 0 && ttl <= 600_000)

        // It refills at the limit's rate, on Redis's clock: a second later the wait is a second shorter.
        let refill = "rl:" + TestEnvironment.uniqueName("key") + ":rpm"
        #expect(try await replicas[0].acquire(refill, limit: 10, period: .seconds(600), cost: 10).allowed)
        let first = try await replicas[1].acquire(refill, limit: 10, period: .seconds(600), cost: 1)
        let firstWait = try #require(first.retryAfter)
        #expect(!first.allowed && firstWait <= .seconds(60))
        try await Task.sleep(for: .seconds(1))
        let later = try await replicas[0].acquire(refill, limit: 10, period: .seconds(600), cost: 1)
        let laterWait = try #require(later.retryAfter)
        #expect(laterWait <= firstWait - .milliseconds(950))
    }
}

/// The concurrency script against the test stack's Redis.
@Suite(.timeLimit(.minutes(1)))
struct RedisConcurrencyLimiterTests {
    @Test func placesAreTakenUpToTheLimitGivenBackAndExpire() async throws {
        let redis = RedisClient(configuration: try ServiceConfiguration(service: .gateway).redis, logger: Logger(label: "test"))
        let limiter = RedisConcurrencyLimiter(redis: redis)
        let slot = "rl:" + TestEnvironment.uniqueName("conc") + ":conc"
        #expect(try await limiter.enter(slot, id: "a", limit: 2, ttl: .seconds(60)) == (true, 1))
        #expect(try await limiter.enter(slot, id: "b", limit: 2, ttl: .seconds(60)) == (true, 2))
        #expect(try await limiter.enter(slot, id: "c", limit: 2, ttl: .seconds(60)) == (false, 2))
        try await limiter.leave(slot, id: "a")
        #expect(try await limiter.enter(slot, id: "c", limit: 2, ttl: .seconds(60)) == (true, 2))
        // A place never given back (its replica died) frees itself after its TTL.
        let lost = "rl:" + TestEnvironment.uniqueName("conc") + ":conc"
        #expect(try await limiter.enter(lost, id: "x", limit: 1, ttl: .milliseconds(300)) == (true, 1))
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await limiter.enter(lost, id: "y", limit: 1, ttl: .seconds(60)) == (true, 1))
    }
}
