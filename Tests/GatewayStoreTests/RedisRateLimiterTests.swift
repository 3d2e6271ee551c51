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
/// by two clients as by two gateway replicas.
@Suite(.timeLimit(.minutes(1)))
struct RedisRateLimiterTests {
    @Test func twoReplicasShareOneBucketThatRefillsAtTheLimitsRate() async throws {
        let configuration = try ServiceConfiguration(service: .gateway).redis
        let clients = (0..<2).map { _ in RedisClient(configuration: configuration, registry: PrometheusCollectorRegistry(), logger: Logger(label: "rl")) }
        let tasks = clients.map { client in Task { try await client.run() } }
        defer { for task in tasks { task.cancel() } }
        let replicas = clients.map { RedisRateLimiter(redis: $0) }
        let bucket = "rl:" + TestEnvironment.uniqueName("key") + ":rpm"
        // Five per second: one every 200 ms, bursts of five.
        var remaining: [Int] = []
        for index in 0..<5 {
            let decision = try await replicas[index % 2].acquire(bucket, limit: 5, period: .seconds(1), cost: 1)
            #expect(decision.allowed)
            remaining.append(decision.remaining)
        }
        #expect(remaining == [4, 3, 2, 1, 0])
        let refused = try await replicas[1].acquire(bucket, limit: 5, period: .seconds(1), cost: 1)
        #expect(!refused.allowed)
        let retry = try #require(refused.retryAfter)
        #expect(retry > .zero && retry <= .milliseconds(200))
        #expect(refused.resetAfter <= .seconds(1) && refused.resetAfter > .milliseconds(700))
        try await Task.sleep(for: retry + .milliseconds(20))
        #expect(try await replicas[0].acquire(bucket, limit: 5, period: .seconds(1), cost: 1).allowed)
        #expect(try await replicas[0].acquire(bucket, limit: 5, period: .seconds(1), cost: 1).allowed == false)
        // The bucket expires once full again: nothing is left behind in Redis.
        let ttl = try await clients[0].pttl(bucket)
        #expect(ttl.map { $0 > 0 && $0 <= 1000 } == true)
    }
}
