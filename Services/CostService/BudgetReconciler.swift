import Budgets
import ConduitProtocol
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// Keeps the live counters honest against the ledger, every `interval`: each budget's current
/// counter is built when Redis lost it and raised when it had spent less than the ledger (a
/// settlement a crashed orchestrator never made); alerts are raised from the ledger's spend.
/// `cost_budget_spend_drift_dollars` is how far the counters are ahead of the ledger in all (the
/// spend of events still on their way; it grows when the ledger consumer lags).
struct BudgetReconciler: Service {
    let accounts: BudgetAccounts
    let alerts: BudgetAlerts
    let interval: Duration
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    struct Pass: Sendable, Equatable {
        var budgets = 0
        /// Counters that did not exist (a new period, a flushed Redis).
        var built = 0
        /// Counters below the ledger.
        var raised = 0
        var driftUSD = 0.0
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                _ = try await reconcile()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("budget reconciliation failed; next pass in \(interval)", metadata: ["error": "\(error)"])
            }
            // Shutdown does not wait out the interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func reconcile() async throws -> Pass {
        var pass = Pass()
        var after: String?
        while true {
            let page = try await accounts.store.page(after: after, limit: 500)
            for budget in page {
                let window = accounts.window(of: budget)
                let result = try await accounts.build(budget, window: window)
                pass.budgets += 1
                if result.before == nil { pass.built += 1 } else if let before = result.before, before < result.ledger { pass.raised += 1 }
                pass.driftUSD += max(0, result.after - result.ledger)
                try await alerts.check(budget, window: window, spentUSD: result.ledger)
            }
            guard page.count == 500, let last = page.last else { break }
            after = last.id
        }
        let store = accounts.store
        try await alerts.redeliver { id in try await store.anyTenantBudget(id) }
        registry.makeGauge(name: "cost_budget_spend_drift_dollars", help: "How far the live spend counters are ahead of the ledger, in USD.").set(pass.driftUSD)
        registry.makeCounter(name: "cost_budget_spend_built_total", help: "Spend counters built from the ledger (new periods, a Redis that lost them).")
            .increment(by: Int64(pass.built))
        registry.makeCounter(name: "cost_budget_spend_raised_total", help: "Spend counters raised to the ledger (settlements that never came).")
            .increment(by: Int64(pass.raised))
        return pass
    }
}
