import ConduitProtocol
import Foundation

/// Budgets and what the ledger says they spent: `PostgresBudgetStore`; the application tests
/// keep them in memory.
protocol BudgetStore: Sendable {
    /// Fails with `BudgetStoreError.tooMany` past `limit` budgets in the tenant.
    func create(_ budget: Budget, limit: Int) async throws
    func budgets(tenant: String) async throws -> [Budget]
    func budget(_ id: String, tenant: String) async throws -> Budget?
    /// Whichever tenant's it is: for the reconciler, never for a caller.
    func anyTenantBudget(_ id: String) async throws -> Budget?
    /// False when there is no such budget in the tenant.
    func update(_ budget: Budget) async throws -> Bool
    func delete(_ id: String, tenant: String) async throws -> Bool
    /// Every tenant's budgets, `limit` at a time in id order after `id` (the reconciler's pages).
    func page(after id: String?, limit: Int) async throws -> [Budget]
    /// The ledger's cost of the requests the budget covers in `window`.
    func ledgerSpent(_ budget: Budget, in window: BudgetWindow) async throws -> Double
    /// The ledger's cost of the requests the budget covers, per calendar day of its time zone, for
    /// the `days` days before the one that starts at `before` (oldest first; 0 for a day without).
    func dailySpent(_ budget: Budget, days: Int, before: Date) async throws -> [Double]
    /// Records that `budget` crossed `threshold` in `window`; false when it was already recorded.
    func recordAlert(_ budget: Budget, window: BudgetWindow, threshold: Double, spentUSD: Double) async throws -> Bool
    /// Alerts recorded but not yet delivered to `conduit.alerts` (a crash between the two), oldest first.
    func undeliveredAlerts(limit: Int) async throws -> [RecordedAlert]
    func markDelivered(_ alert: RecordedAlert) async throws
}

/// A threshold a budget crossed in one of its periods.
struct RecordedAlert: Sendable, Hashable {
    var budgetID: String
    var window: String
    var threshold: Double
    var spentUSD: Double
}

enum BudgetStoreError: Error, Equatable {
    case tooMany
}
