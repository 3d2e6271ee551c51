import Budgets
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
@testable import Orchestrator
import TestSupport

/// A tenant's budgets as the cost-service would give them; `unavailable` plays an unreachable one.
final class FakeBudgets: BudgetDirectory {
    let defined = Locked<[Budget]>([])
    let unavailable = Locked(false)
    let built = Locked<[String]>([])
    /// What `buildCounters` does to the counters (the cost-service builds them from the ledger).
    let onBuild = Locked<(@Sendable ([Budget]) -> Void)?>(nil)

    func budgets(tenant: String, context: ConduitRequestContext) async throws -> [Budget] {
        if unavailable.withLock({ $0 }) {
            throw APIError(status: .serviceUnavailable, type: .server, message: "Budgets cannot be checked right now.", code: "budgets_unavailable")
        }
        return defined.withLock { $0.filter { $0.tenant == tenant } }
    }

    func buildCounters(_ budgets: [Budget], context: ConduitRequestContext) async throws {
        built.withLock { $0 += budgets.map(\.id) }
        onBuild.withLock { $0 }?(budgets)
    }
}
