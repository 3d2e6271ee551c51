/// Where request rates are counted: `RedisRateLimiter` (GCRA, shared by every gateway replica);
/// an application test counts in memory.
protocol RateLimiter: Sendable {
    /// Takes `cost` from `bucket`, allowed `limit` per `period` (bursts up to `limit`), if it can.
    func acquire(_ bucket: String, limit: Int, period: Duration, cost: Int) async throws -> RateDecision
}

/// A limiter's answer, for the 429 and the `x-ratelimit-*` headers.
struct RateDecision: Sendable, Equatable {
    var allowed: Bool
    var limit: Int
    var remaining: Int
    /// Until the bucket is full again.
    var resetAfter: Duration
    /// Until `cost` fits, when refused.
    var retryAfter: Duration?
}
