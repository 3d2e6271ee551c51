@testable import Gateway
import TestSupport

/// The in-memory GCRA (`LocalRateLimiter`, the gateway's own fallback) with every bucket asked
/// for and every settlement written down; `failing` makes it unreachable, as Redis can be.
final class CountingRateLimiter: RateLimiter {
    struct Unreachable: Error {}
    private let local = LocalRateLimiter()
    private let asked = Locked<[String: Int]>([:])
    private let settled = Locked<[(key: String, delta: Int)]>([])
    let failing: Bool
    /// Requests admitted per bucket.
    var buckets: [String: Int] { asked.withLock { $0 } }
    var settlements: [(key: String, delta: Int)] { settled.withLock { $0 } }

    init(failing: Bool = false) { self.failing = failing }

    func acquire(_ buckets: [RateBucket], id: String) async throws -> RateVerdict {
        if failing { throw Unreachable() }
        let verdict = try await local.acquire(buckets, id: id)
        if verdict.allowed { asked.withLock { asked in for bucket in buckets { asked[bucket.key, default: 0] += 1 } } }
        return verdict
    }

    func settle(_ buckets: [RateBucket], delta: Int) async throws {
        if failing { throw Unreachable() }
        settled.withLock { settled in for bucket in buckets where bucket.kind == .tokens { settled.append((bucket.key, delta)) } }
        try await local.settle(buckets, delta: delta)
    }
}
