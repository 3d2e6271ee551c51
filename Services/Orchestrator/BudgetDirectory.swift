import Budgets
import ConduitKit
import ConduitProtocol

/// Where the chat path learns a tenant's budgets and has lost counters rebuilt: the
/// cost-service (`CostServiceBudgets`, cached); an application test keeps them in memory.
protocol BudgetDirectory: Sendable {
    /// The tenant's budgets. Throws `APIError` (503) when they cannot be known.
    func budgets(tenant: String, context: ConduitRequestContext) async throws -> [Budget]
    /// Asks for the current counters of `budgets` to be built from the ledger.
    func buildCounters(_ budgets: [Budget], context: ConduitRequestContext) async throws
}

/// The live counters as the chat path uses them: `BudgetCounters` over Redis.
protocol SpendReservations: Sendable {
    func reserve(_ id: String, amountUSD: Double, against counters: [(counter: BudgetCounters.Counter, limitUSD: Double)], ttl: Duration) async throws
        -> BudgetCounters.Reservation
    func settle(_ id: String, costUSD: Double, on counters: [BudgetCounters.Counter]) async throws
    /// What a counter has spent and holds; nil when it is not built.
    func state(of counter: BudgetCounters.Counter) async throws -> BudgetCounters.State?
}

extension BudgetCounters: SpendReservations {}
