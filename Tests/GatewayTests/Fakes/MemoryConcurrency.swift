import Foundation
@testable import Gateway
import TestSupport

/// Places in flight per slot, in memory, with the Redis script's rule (the TTL is not modelled:
/// the Redis tier tests it). Every enter and leave is written down.
final class MemoryConcurrency: ConcurrencyLimiter {
    let places = Locked<[String: Set<String>]>([:])
    let left = Locked<[String]>([])
    let unreachable = Locked(false)

    func enter(_ slots: [(key: String, limit: Int)], id: String, ttl: Duration) async throws -> (admitted: Bool, inFlight: [Int]) {
        if unreachable.withLock({ $0 }) { throw URLError(.cannotConnectToHost) }
        return places.withLock { places in
            let counts = slots.map { places[$0.key, default: []].count }
            guard zip(slots, counts).allSatisfy({ $1 < $0.limit }) else { return (false, counts) }
            for slot in slots { places[slot.key, default: []].insert(id) }
            return (true, counts.map { $0 + 1 })
        }
    }

    func leave(_ slots: [String], id: String) async throws {
        places.withLock { places in for slot in slots { _ = places[slot]?.remove(id) } }
        left.withLock { $0.append(id) }
    }

    func inFlight(_ slot: String) -> Int { places.withLock { $0[slot]?.count ?? 0 } }
}
