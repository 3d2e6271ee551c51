import Foundation
@testable import Gateway
import TestSupport

/// Places in flight per slot, in memory, with the Redis script's rule (the TTL is not modelled:
/// the Redis tier tests it). Every enter and leave is written down.
final class MemoryConcurrency: ConcurrencyLimiter {
    let places = Locked<[String: Set<String>]>([:])
    let left = Locked<[String]>([])
    let unreachable = Locked(false)

    func enter(_ slot: String, id: String, limit: Int, ttl: Duration) async throws -> (admitted: Bool, inFlight: Int) {
        if unreachable.withLock({ $0 }) { throw URLError(.cannotConnectToHost) }
        return places.withLock { places in
            let count = places[slot, default: []].count
            guard count < limit else { return (false, count) }
            places[slot, default: []].insert(id)
            return (true, count + 1)
        }
    }

    func leave(_ slot: String, id: String) async throws {
        places.withLock { _ = $0[slot]?.remove(id) }
        left.withLock { $0.append(id) }
    }

    func inFlight(_ slot: String) -> Int { places.withLock { $0[slot]?.count ?? 0 } }
}
