import ConduitProtocol
@testable import CostService
import Foundation
import TestSupport

/// Budgets in memory, with a ledger's spend per budget set by the test.
final class MemoryBudgetStore: BudgetStore {
    let budgetsByID = Locked<[String: Budget]>([:])
    let spent = Locked<[String: Double]>([:])
    let alerts = Locked<[RecordedAlert: Bool]>([:])

    func create(_ budget: Budget, limit: Int) async throws {
        try budgetsByID.withLock { budgets in
            guard budgets.values.filter({ $0.tenant == budget.tenant }).count < limit else { throw BudgetStoreError.tooMany }
            budgets[budget.id] = budget
        }
    }

    func budgets(tenant: String) async throws -> [Budget] {
        budgetsByID.withLock { $0.values.filter { $0.tenant == tenant }.sorted { $0.id < $1.id } }
    }

    func budget(_ id: String, tenant: String) async throws -> Budget? {
        budgetsByID.withLock { $0[id].flatMap { $0.tenant == tenant ? $0 : nil } }
    }

    func anyTenantBudget(_ id: String) async throws -> Budget? { budgetsByID.withLock { $0[id] } }

    func update(_ budget: Budget) async throws -> Bool {
        budgetsByID.withLock { budgets in
            guard budgets[budget.id]?.tenant == budget.tenant else { return false }
            budgets[budget.id] = budget
            return true
        }
    }

    func delete(_ id: String, tenant: String) async throws -> Bool {
        budgetsByID.withLock { budgets in
            guard budgets[id]?.tenant == tenant else { return false }
            budgets[id] = nil
            return true
        }
    }

    func page(after id: String?, limit: Int) async throws -> [Budget] {
        budgetsByID.withLock { Array($0.values.filter { $0.id > (id ?? "") }.sorted { $0.id < $1.id }.prefix(limit)) }
    }

    func ledgerSpent(_ budget: Budget, in window: BudgetWindow) async throws -> Double { spent.withLock { $0[budget.id] ?? 0 } }

    let daily = Locked<[String: [Double]]>([:])

    func dailySpent(_ budget: Budget, days: Int, before: Date) async throws -> [Double] {
        let history = daily.withLock { $0[budget.id] ?? [] }
        return Array(repeating: 0, count: max(0, days - history.count)) + history.suffix(days)
    }

    func recordAlert(_ budget: Budget, window: BudgetWindow, threshold: Double, spentUSD: Double) async throws -> Bool {
        alerts.withLock { alerts in
            let alert = RecordedAlert(budgetID: budget.id, window: window.label, threshold: threshold, spentUSD: 0)
            guard alerts[alert] == nil else { return false }
            alerts[alert] = false
            return true
        }
    }

    func undeliveredAlerts(limit: Int) async throws -> [RecordedAlert] {
        alerts.withLock { Array($0.filter { !$0.value }.keys.prefix(limit)) }
    }

    func markDelivered(_ alert: RecordedAlert) async throws {
        alerts.withLock { $0[RecordedAlert(budgetID: alert.budgetID, window: alert.window, threshold: alert.threshold, spentUSD: 0)] = true }
    }
}
