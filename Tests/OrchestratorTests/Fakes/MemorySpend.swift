import Budgets
import Foundation
@testable import Orchestrator
import TestSupport

/// Spend counters in memory with the Redis script's rules: a counter must be built before it
/// holds anything, and a hold fits every counter or none. Every call is written down.
final class MemorySpend: SpendReservations {
    struct Counter {
        var spent = 0.0
        var holds: [String: Double] = [:]
    }

    let counters = Locked<[BudgetCounters.Counter: Counter]>([:])
    let reservations = Locked<[(id: String, amount: Double, counters: [BudgetCounters.Counter])]>([])
    let settlements = Locked<[(id: String, cost: Double)]>([])

    func build(_ counter: BudgetCounters.Counter, spent: Double) {
        counters.withLock { $0[counter, default: Counter()].spent = max($0[counter]?.spent ?? 0, spent) }
    }

    func reserve(_ id: String, amountUSD: Double, against charges: [(counter: BudgetCounters.Counter, limitUSD: Double)], ttl: Duration) async throws
        -> BudgetCounters.Reservation {
        try await Task.sleep(for: .zero)
        return counters.withLock { counters in
            let unbuilt = charges.indices.filter { counters[charges[$0].counter] == nil }
            if !unbuilt.isEmpty { return .unbuilt(unbuilt) }
            for (index, charge) in charges.enumerated() {
                let counter = counters[charge.counter]!
                let held = counter.holds.values.reduce(0, +)
                if counter.spent + held + amountUSD > charge.limitUSD + 1e-12 { return .refused(index: index, spentUSD: counter.spent, reservedUSD: held) }
            }
            for charge in charges { counters[charge.counter]!.holds[id] = amountUSD }
            reservations.withLock { $0.append((id, amountUSD, charges.map(\.counter))) }
            return .held
        }
    }

    func settle(_ id: String, costUSD: Double, on settled: [BudgetCounters.Counter]) async throws {
        counters.withLock { counters in
            for counter in settled where counters[counter] != nil {
                counters[counter]!.holds[id] = nil
                counters[counter]!.spent += costUSD
            }
        }
        settlements.withLock { $0.append((id, costUSD)) }
    }

    func state(of counter: BudgetCounters.Counter) async throws -> BudgetCounters.State? {
        counters.withLock { counters in
            counters[counter].map { BudgetCounters.State(spentUSD: $0.spent, reservedUSD: $0.holds.values.reduce(0, +), built: true) }
        }
    }

    /// Whether `count` settles have arrived within a few seconds (they run after the response).
    func settled(_ count: Int) async throws -> Bool {
        try await eventually(within: .seconds(5)) { settlements.withLock { $0.count } >= count }
    }

    func spent(_ counter: BudgetCounters.Counter) -> Double { counters.withLock { $0[counter]?.spent ?? 0 } }
    func held(_ counter: BudgetCounters.Counter) -> Double { counters.withLock { $0[counter]?.holds.values.reduce(0, +) ?? 0 } }
}
