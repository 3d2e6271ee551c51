@testable import Gateway
import TestSupport

/// The in-memory GCRA (`LocalRateLimiter`, the gateway's own fallback) with every bucket asked
/// for and every settlement written down; `failing` makes it unreachable, as Redis can be.
final class CountingRateLimiter: RateLimiter {
    struct Unreachable: Error {}
    private let local = LocalRateLimiter()
    private let asked = Locked<[String: Int]>([:])
    private let settled = Locked<[(key: String, delta: Int)]>([])
    private let givenBack = Locked<[String]>([])
    let failing: Bool
    /// Requests admitted per bucket.
    var buckets: [String: Int] { asked.withLock { $0 } }
    var settlements: [(key: String, delta: Int)] { settled.withLock { $0 } }
    /// Ids of the requests that gave their places in flight back.
    var released: [String] { givenBack.withLock { $0 } }
    func held(_ key: String) -> Int { local.held(key) }

    init(failing: Bool = false) { self.failing = failing }

    func acquire(_ buckets: [RateBucket], id: String) async throws -> RateVerdict {
        if failing { throw Unreachable() }
        let verdict = try await local.acquire(buckets, id: id)
        if verdict.allowed { asked.withLock { asked in for bucket in buckets { asked[bucket.key, default: 0] += 1 } } }
        return verdict
    }

    func release(_ buckets: [RateBucket], id: String) async throws {
        if failing { throw Unreachable() }
        givenBack.withLock { $0.append(id) }
        try await local.release(buckets, id: id)
    }

    /// Takes a place in an in-flight bucket, as a request on another replica would.
    func occupy(_ key: String, id: String, limit: Int) async throws {
        _ = try await local.acquire([RateBucket(key: key, kind: .inFlight, limit: limit, period: .seconds(60), cost: 1)], id: id)
    }

    func vacate(_ key: String, id: String) async throws {
        try await local.release([RateBucket(key: key, kind: .inFlight, limit: 1, cost: 1)], id: id)
    }

    func settle(_ buckets: [RateBucket], delta: Int) async throws {
        if failing { throw Unreachable() }
        settled.withLock { settled in for bucket in buckets where bucket.kind == .tokens { settled.append((bucket.key, delta)) } }
        try await local.settle(buckets, delta: delta)
    }
}
