import ConduitProtocol
import Foundation
import Postgres

/// `cost.budgets`, `cost.budget_alerts`, and the budget's spend summed from `cost.usage_ledger`.
struct PostgresBudgetStore: BudgetStore {
    let postgres: PostgresClient

    static let columns = """
        id, tenant_id, name, team, user_id, key_id, tag, model, period, time_zone, limit_usd, alert_thresholds, webhook_url, created_at
        """

    func create(_ budget: Budget, limit: Int) async throws {
        // The advisory lock serialises a tenant's creates, so the count and the insert cannot race.
        let rows = try await postgres.withTransaction { session in
            try await session.query("SELECT pg_advisory_xact_lock(hashtext('cost.budgets:' || $1))", budget.tenant)
            return try await session.query("""
                INSERT INTO cost.budgets (\(Self.columns))
                SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
                WHERE (SELECT count(*) FROM cost.budgets WHERE tenant_id = $2) < $15
                RETURNING 1
                """, budget.id, budget.tenant, budget.name, budget.scope.team, budget.scope.user, budget.scope.keyID, budget.scope.tag,
                budget.model, budget.period.rawValue, budget.timeZone, budget.limitUSD, budget.alertThresholds, budget.webhookURL,
                budget.createdAt, limit)
        }
        guard rows.count == 1 else { throw BudgetStoreError.tooMany }
    }

    func budgets(tenant: String) async throws -> [Budget] {
        try await postgres.query("SELECT \(Self.columns) FROM cost.budgets WHERE tenant_id = $1 ORDER BY created_at, id", tenant).map(Self.budget)
    }

    func budget(_ id: String, tenant: String) async throws -> Budget? {
        try await postgres.query("SELECT \(Self.columns) FROM cost.budgets WHERE id = $1 AND tenant_id = $2", id, tenant).first.map(Self.budget)
    }

    func anyTenantBudget(_ id: String) async throws -> Budget? {
        try await postgres.query("SELECT \(Self.columns) FROM cost.budgets WHERE id = $1", id).first.map(Self.budget)
    }

    func update(_ budget: Budget) async throws -> Bool {
        try await postgres.query("""
            UPDATE cost.budgets SET name = $3, limit_usd = $4, alert_thresholds = $5, webhook_url = $6, updated_at = now()
            WHERE id = $1 AND tenant_id = $2 RETURNING 1
            """, budget.id, budget.tenant, budget.name, budget.limitUSD, budget.alertThresholds, budget.webhookURL).count == 1
    }

    func delete(_ id: String, tenant: String) async throws -> Bool {
        try await postgres.query("DELETE FROM cost.budgets WHERE id = $1 AND tenant_id = $2 RETURNING 1", id, tenant).count == 1
    }

    func page(after id: String?, limit: Int) async throws -> [Budget] {
        try await postgres.query(
            "SELECT \(Self.columns) FROM cost.budgets WHERE id > $1 ORDER BY id LIMIT $2", id ?? "", limit).map(Self.budget)
    }

    func ledgerSpent(_ budget: Budget, in window: BudgetWindow) async throws -> Double {
        // Each filter is off when its value is null; tags match by membership.
        let rows = try await postgres.query("""
            SELECT coalesce(sum(cost_usd), 0)::text FROM cost.usage_ledger
            WHERE tenant_id = $1
              AND ($2::timestamptz IS NULL OR occurred_at >= $2) AND ($3::timestamptz IS NULL OR occurred_at < $3)
              AND ($4::text IS NULL OR team = $4) AND ($5::text IS NULL OR user_id = $5) AND ($6::text IS NULL OR key_id = $6)
              AND ($7::text IS NULL OR $7 = ANY (tags)) AND ($8::text IS NULL OR model = $8)
            """, budget.tenant, window.start, window.end, budget.scope.team, budget.scope.user, budget.scope.keyID, budget.scope.tag, budget.model)
        return Double(try rows.first?.decode(String.self, at: 0) ?? "0") ?? 0
    }

    func dailySpent(_ budget: Budget, days: Int, before: Date) async throws -> [Double] {
        let start = before.addingTimeInterval(-Double(days) * 86_400 - 7200)
        let rows = try await postgres.query("""
            WITH spent AS (
                SELECT (occurred_at AT TIME ZONE $9)::date AS day, sum(cost_usd) AS cost FROM cost.usage_ledger
                WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3
                  AND ($4::text IS NULL OR team = $4) AND ($5::text IS NULL OR user_id = $5) AND ($6::text IS NULL OR key_id = $6)
                  AND ($7::text IS NULL OR $7 = ANY (tags)) AND ($8::text IS NULL OR model = $8)
                GROUP BY 1
            )
            SELECT coalesce(spent.cost, 0)::text
            FROM generate_series(($3::timestamptz AT TIME ZONE $9)::date - $10::int, ($3::timestamptz AT TIME ZONE $9)::date - 1, interval '1 day') AS days(day)
            LEFT JOIN spent ON spent.day = days.day::date ORDER BY days.day
            """, budget.tenant, start, before, budget.scope.team, budget.scope.user, budget.scope.keyID, budget.scope.tag, budget.model,
            budget.timeZone, days)
        return try rows.map { Double(try $0.decode(String.self, at: 0)) ?? 0 }
    }

    func recordAlert(_ budget: Budget, window: BudgetWindow, threshold: Double, spentUSD: Double) async throws -> Bool {
        try await postgres.query("""
            INSERT INTO cost.budget_alerts (budget_id, window_label, threshold, spent_usd) VALUES ($1, $2, $3, $4)
            ON CONFLICT DO NOTHING RETURNING 1
            """, budget.id, window.label, threshold, spentUSD).count == 1
    }

    func undeliveredAlerts(limit: Int) async throws -> [RecordedAlert] {
        try await postgres.query("""
            SELECT budget_id, window_label, threshold, spent_usd FROM cost.budget_alerts WHERE delivered_at IS NULL ORDER BY raised_at LIMIT $1
            """, limit).map { row in
            RecordedAlert(budgetID: try row.decode(at: 0), window: try row.decode(at: 1), threshold: try row.decode(at: 2), spentUSD: try row.decode(at: 3))
        }
    }

    func markDelivered(_ alert: RecordedAlert) async throws {
        try await postgres.query(
            "UPDATE cost.budget_alerts SET delivered_at = now() WHERE budget_id = $1 AND window_label = $2 AND threshold = $3",
            alert.budgetID, alert.window, alert.threshold)
    }

    static func budget(_ row: PostgresRow) throws -> Budget {
        Budget(
            id: try row.decode(at: 0), tenant: try row.decode(at: 1), name: try row.decode(at: 2),
            scope: BudgetScope(team: try row.decode(at: 3), user: try row.decode(at: 4), keyID: try row.decode(at: 5), tag: try row.decode(at: 6)),
            model: try row.decode(at: 7), period: BudgetPeriod(rawValue: try row.decode(at: 8)) ?? .total, timeZone: try row.decode(at: 9),
            limitUSD: try row.decode(at: 10), alertThresholds: try row.decode(at: 11), webhookURL: try row.decode(at: 12),
            createdAt: try row.decode(at: 13))
    }
}
