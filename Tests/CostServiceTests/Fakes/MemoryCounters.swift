import Budgets
@testable import CostService
import TestSupport

/// Spend counters in memory, built as the Redis ones are (raised to the ledger, never lowered).
final class MemoryCounters: SpendCounters {
    let states = Locked<[BudgetCounters.Counter: BudgetCounters.State]>([:])

    func state(of counter: BudgetCounters.Counter) async throws -> BudgetCounters.State? { states.withLock { $0[counter] } }

    func build(_ counter: BudgetCounters.Counter, ledgerSpentUSD: Double) async throws -> (before: Double?, after: Double) {
        states.withLock { states in
            let before = states[counter]
            let after = max(before?.spentUSD ?? 0, ledgerSpentUSD)
            states[counter] = .init(spentUSD: after, reservedUSD: before?.reservedUSD ?? 0, built: true)
            return (before?.spentUSD, after)
        }
    }
}
