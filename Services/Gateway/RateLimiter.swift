import Foundation
import Synchronization

/// Where request and token rates are counted: `RedisRateLimiter` (shared by every gateway
/// replica), `LocalRateLimiter` (one replica's memory: the fallback while Redis cannot be
/// reached; an application test counts with it too). Both count a request bucket as a sliding
/// window (at most `limit` requests in any `period`: 60 RPM is never 61 in a minute) and a token
/// bucket with the generic cell rate algorithm (GCRA: a minute's tokens may be spent at once,
/// and they come back at the limit's rate, so a reservation can be settled afterwards), and an
/// in-flight bucket as the set of requests holding a place (each place lapses after `period`,
/// in case its replica died before giving it back).
protocol RateLimiter: Sendable {
    /// Takes each bucket's `cost` if every bucket can give it, else takes nothing: one decision
    /// for all the limits a request is under. `id` names the request in the request windows.
    func acquire(_ buckets: [RateBucket], id: String) async throws -> RateVerdict
    /// Gives back (negative `delta`) or takes more (positive) of token buckets already acquired
    /// from: a tokens-per-minute reservation settled to the real count. Never refuses.
    func settle(_ buckets: [RateBucket], delta: Int) async throws
    /// Gives back the places request `id` took in in-flight buckets.
    func release(_ buckets: [RateBucket], id: String) async throws
}

/// One limit a request is counted against: `limit` units per `period`.
struct RateBucket: Sendable, Equatable {
    enum Kind: String, Sendable { case requests, tokens, inFlight }
    var key: String
    var kind: Kind
    var limit: Int
    var period: Duration = .seconds(60)
    var cost: Int

    var periodMicroseconds: Double {
        Double(period.components.seconds) * 1e6 + Double(period.components.attoseconds) / 1e12
    }

    /// Microseconds between two units at the limit's rate (GCRA).
    var interval: Double { periodMicroseconds / Double(max(1, limit)) }

    /// A request estimated above the whole limit waits for a full bucket and empties it, rather
    /// than never passing.
    var clampedCost: Int { min(max(0, cost), max(1, limit)) }
}

/// A limiter's answer: whether the request may go, and each bucket's state for the headers.
struct RateVerdict: Sendable, Equatable {
    var allowed: Bool
    /// When refused: until every bucket has room for its cost.
    var retryAfter: Duration?
    /// In the order of the buckets asked for.
    var decisions: [RateDecision]
}

/// One bucket's state after a decision, for the 429 and the `x-ratelimit-*` headers.
struct RateDecision: Sendable, Equatable {
    var allowed: Bool
    var limit: Int
    var remaining: Int
    /// Until the bucket is full again.
    var resetAfter: Duration
}

/// The same windows and GCRA in one replica's memory. At most `capacity` buckets; past it,
/// buckets with nothing left to remember are forgotten first, then the request is let through
/// uncounted (`overflowed` counts it).
final class LocalRateLimiter: RateLimiter {
    private struct State {
        /// GCRA: the theoretical arrival time of a token bucket.
        var arrivals: [String: Double] = [:]
        /// Sliding windows: when each request of a request bucket came, oldest first.
        var windows: [String: [Double]] = [:]
        /// In flight: each place's request and when it lapses.
        var places: [String: [String: Double]] = [:]
        var overflowed = 0

        var count: Int { arrivals.count + windows.count + places.count }
    }

    private let state = Mutex(State())
    let capacity: Int
    private let start = ContinuousClock.now

    init(capacity: Int = 100_000) { self.capacity = capacity }

    /// Buckets held now (the gauge `gateway_rate_limit_local_buckets`).
    var count: Int { state.withLock { $0.count } }
    var overflowed: Int { state.withLock { $0.overflowed } }
    /// Places held in an in-flight bucket.
    func held(_ key: String) -> Int { state.withLock { $0.places[key]?.count ?? 0 } }

    private var now: Double {
        let elapsed = ContinuousClock.now - start
        // Offset by a day so that "never" (0) is long before any request.
        return 86_400e6 + Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
    }

    func acquire(_ buckets: [RateBucket], id: String) async throws -> RateVerdict {
        let now = self.now
        return state.withLock { state in
            if state.count + buckets.count > capacity {
                state.arrivals = state.arrivals.filter { $0.value > now }
                state.windows = state.windows.filter { $0.value.last.map { $0 > now - 3_600e6 } ?? false }
                state.places = state.places.filter { !$0.value.isEmpty }
            }
            guard state.count + buckets.count <= capacity else {
                state.overflowed += 1
                return RateVerdict(allowed: true, retryAfter: nil, decisions: [])
            }
            var observed: [RateWindow.Observed] = []
            for bucket in buckets {
                switch bucket.kind {
                case .requests:
                    var times = state.windows[bucket.key] ?? []
                    let horizon = now - bucket.periodMicroseconds
                    if let keep = times.firstIndex(where: { $0 > horizon }) { times.removeFirst(keep) } else { times.removeAll() }
                    state.windows[bucket.key] = times
                    observed.append(.window(times))
                case .tokens:
                    observed.append(.arrival(max(state.arrivals[bucket.key] ?? now, now)))
                case .inFlight:
                    let held = (state.places[bucket.key] ?? [:]).filter { $0.value > now }
                    state.places[bucket.key] = held
                    observed.append(.places(held.count))
                }
            }
            let verdict = RateWindow.decide(buckets, observed: observed, now: now)
            guard verdict.allowed else { return verdict }
            for (bucket, seen) in zip(buckets, observed) {
                switch seen {
                case .window: state.windows[bucket.key, default: []].append(now)
                case .arrival(let tat): state.arrivals[bucket.key] = tat + bucket.interval * Double(bucket.clampedCost)
                case .places: state.places[bucket.key, default: [:]][id] = now + bucket.periodMicroseconds
                }
            }
            return verdict
        }
    }

    func release(_ buckets: [RateBucket], id: String) async throws {
        state.withLock { state in
            for bucket in buckets where bucket.kind == .inFlight {
                state.places[bucket.key]?[id] = nil
                if state.places[bucket.key]?.isEmpty == true { state.places[bucket.key] = nil }
            }
        }
    }

    func settle(_ buckets: [RateBucket], delta: Int) async throws {
        let now = self.now
        state.withLock { state in
            for bucket in buckets where bucket.kind == .tokens {
                guard let tat = state.arrivals[bucket.key] else { continue }
                let settled = max(tat, now) + bucket.interval * Double(delta)
                state.arrivals[bucket.key] = settled > now ? settled : nil
            }
        }
    }
}

/// The decision both limiters make from what they hold of each bucket.
enum RateWindow {
    enum Observed {
        /// A request bucket's requests within the period, oldest first.
        case window([Double])
        /// A token bucket's theoretical arrival time, not before now.
        case arrival(Double)
        /// An in-flight bucket's places held.
        case places(Int)
    }

    static func decide(_ buckets: [RateBucket], observed: [Observed], now: Double) -> RateVerdict {
        var allowed = true
        var wait = 0.0
        for (bucket, seen) in zip(buckets, observed) {
            switch seen {
            case .window(let times):
                if times.count + 1 > bucket.limit {
                    allowed = false
                    // The request that must leave the window before one more fits.
                    wait = max(wait, times[times.count - bucket.limit] + bucket.periodMicroseconds - now)
                }
            case .arrival(let tat):
                let allowAt = tat + bucket.interval * Double(bucket.clampedCost - bucket.limit)
                if now < allowAt {
                    allowed = false
                    wait = max(wait, allowAt - now)
                }
            case .places(let held):
                if held >= bucket.limit {
                    allowed = false
                    wait = max(wait, 1e6)  // a place frees when a request ends: try again in a second
                }
            }
        }
        let decisions = zip(buckets, observed).map { bucket, seen -> RateDecision in
            switch seen {
            case .window(let times):
                let count = times.count + (allowed ? 1 : 0)
                let newest = allowed ? now : (times.last ?? now)
                return RateDecision(allowed: times.count < bucket.limit, limit: bucket.limit, remaining: max(0, bucket.limit - count),
                                    resetAfter: .microseconds(Int64(max(0, newest + bucket.periodMicroseconds - now))))
            case .arrival(let tat):
                let after = allowed ? tat + bucket.interval * Double(bucket.clampedCost) : tat
                let left = Int(((now - after) / bucket.interval).rounded(.down)) + bucket.limit
                let fits = now >= tat + bucket.interval * Double(bucket.clampedCost - bucket.limit)
                return RateDecision(allowed: fits, limit: bucket.limit, remaining: min(max(0, left), bucket.limit),
                                    resetAfter: .microseconds(Int64(max(0, after - now))))
            case .places(let held):
                return RateDecision(allowed: held < bucket.limit, limit: bucket.limit, remaining: max(0, bucket.limit - held - (allowed ? 1 : 0)),
                                    resetAfter: .zero)
            }
        }
        return RateVerdict(allowed: allowed, retryAfter: allowed ? nil : .microseconds(Int64(wait.rounded(.up))), decisions: decisions)
    }
}
