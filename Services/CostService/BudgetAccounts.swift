import Budgets
import ConduitProtocol
import Foundation

/// A budget's spend in its current period, from the live counters, built from the ledger when
/// Redis does not have them.
struct BudgetAccounts: Sendable {
    let store: any BudgetStore
    let counters: any SpendCounters
    let now: @Sendable () -> Date

    struct Status: Sendable {
        var window: BudgetWindow
        var spentUSD: Double
        var reservedUSD: Double
    }

    func window(of budget: Budget) -> BudgetWindow {
        budget.period.window(containing: now(), in: TimeZone(identifier: budget.timeZone) ?? .gmt)
    }

    func status(of budget: Budget) async throws -> Status {
        let window = window(of: budget)
        let counter = BudgetCounters.Counter(budgetID: budget.id, window: window)
        if let state = try await counters.state(of: counter), state.built {
            return Status(window: window, spentUSD: state.spentUSD, reservedUSD: state.reservedUSD)
        }
        try await build(budget, window: window)
        let state = try await counters.state(of: counter)
        return Status(window: window, spentUSD: state?.spentUSD ?? 0, reservedUSD: state?.reservedUSD ?? 0)
    }

    /// Builds (or raises) the budget's current counter from the ledger. Returns the ledger's
    /// spend and the counter's before and after.
    @discardableResult
    func build(_ budget: Budget, window: BudgetWindow? = nil) async throws -> (ledger: Double, before: Double?, after: Double) {
        let window = window ?? self.window(of: budget)
        let ledger = try await store.ledgerSpent(budget, in: window)
        let built = try await counters.build(.init(budgetID: budget.id, window: window), ledgerSpentUSD: ledger)
        return (ledger, built.before, built.after)
    }
}

/// The live counters as the cost-service uses them: `BudgetCounters` over Redis.
protocol SpendCounters: Sendable {
    func state(of counter: BudgetCounters.Counter) async throws -> BudgetCounters.State?
    func build(_ counter: BudgetCounters.Counter, ledgerSpentUSD: Double) async throws -> (before: Double?, after: Double)
}

extension BudgetCounters: SpendCounters {}
