@testable import Gateway
import TestSupport

/// Counts requests per bucket and allows `limit` of them (the window never refills): the
/// stand-in for `RedisRateLimiter`, whose timing is tested against Redis. `failing` makes it
/// unreachable.
final class CountingRateLimiter: RateLimiter {
    struct Unreachable: Error {}
    private let counts = Locked<[String: Int]>([:])
    let failing: Bool
    var buckets: [String: Int] { counts.withLock { $0 } }

    init(failing: Bool = false) { self.failing = failing }

    func acquire(_ bucket: String, limit: Int, period: Duration, cost: Int) async throws -> RateDecision {
        if failing { throw Unreachable() }
        return counts.withLock { counts in
            let used = counts[bucket, default: 0]
            guard used + cost <= limit else {
                return RateDecision(allowed: false, limit: limit, remaining: 0, resetAfter: period, retryAfter: .milliseconds(1500))
            }
            counts[bucket] = used + cost
            return RateDecision(allowed: true, limit: limit, remaining: limit - used - cost, resetAfter: .milliseconds(500), retryAfter: nil)
        }
    }
}
