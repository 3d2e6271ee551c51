import Budgets
import ConduitKit
import ConduitPostgres
import ConduitProtocol
@testable import CostService
import Foundation
import Logging
import Postgres
import Prometheus
import Redis
import Testing
import TestSupport

/// Budgets over the real ledger and counters: the test stack's Postgres and Redis, each test on
/// a tenant of its own, the clock injected.
@Suite(.timeLimit(.minutes(2)))
struct BudgetLedgerTests {
    static let logger = Logger(label: "cost-budgets")

    final class Fixture: Sendable {
        let postgres: PostgresClient
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort), logger: BudgetLedgerTests.logger)
        let tenant = TestEnvironment.uniqueName("budgets")
        let clock: Locked<Date>
        let published = Locked<[AlertEvent]>([])
        let running: Task<Void, any Error>

        init(now: String) async throws {
            postgres = PostgresClient(configuration: try ServiceConfiguration(service: .costService).postgres, logger: BudgetLedgerTests.logger)
            clock = Locked(ISO8601DateFormatter().date(from: now)!)
            running = Task { [postgres] in try await postgres.run() }
            try await migrate(CostMigrations.cost, on: postgres, logger: BudgetLedgerTests.logger)
        }

        var store: PostgresBudgetStore { PostgresBudgetStore(postgres: postgres) }
        var accounts: BudgetAccounts {
            let clock = self.clock
            return BudgetAccounts(store: store, counters: BudgetCounters(redis: redis), now: { clock.withLock { $0 } })
        }

        func reconciler() -> BudgetReconciler {
            let published = self.published
            return BudgetReconciler(
                accounts: accounts,
                alerts: BudgetAlerts(store: store, publish: { event in published.withLock { $0.append(event) } }, webhook: nil,
                                     registry: PrometheusCollectorRegistry(), logger: BudgetLedgerTests.logger),
                interval: .seconds(1), registry: PrometheusCollectorRegistry(), logger: BudgetLedgerTests.logger)
        }

        func set(_ now: String) { clock.withLock { $0 = ISO8601DateFormatter().date(from: now)! } }

        /// A ledger row of `cost` at `at`, recorded as the consumer records it.
        func spend(_ cost: Double, at: String, key: String = "k1", team: String? = nil, user: String? = nil, tags: [String]? = nil, model: String = "gpt-4o") async throws {
            var event = UsageEvent(requestID: UUID().uuidString, tenant: tenant, kind: "chat", model: model, promptTokens: 1, completionTokens: 1,
                                   status: "ok", timestamp: ISO8601DateFormatter().date(from: at)!)
            event.keyID = key
            event.team = team
            event.user = user
            event.tags = tags
            event.costUSD = cost
            #expect(try await PostgresUsageLedger(postgres: postgres).record(event))
        }

        func budget(_ scope: BudgetScope, model: String? = nil, period: BudgetPeriod = .month, zone: String = "UTC", limit: Double) async throws -> Budget {
            let budget = Budget(id: TestEnvironment.uniqueName("bud"), tenant: tenant, scope: scope, model: model, period: period, timeZone: zone,
                                limitUSD: limit, createdAt: Date(timeIntervalSince1970: 1_700_000_000))
            try await store.create(budget, limit: 100)
            return budget
        }
    }

    @Test func aBudgetsLedgerSpendCountsOnlyTheRequestsItsScopeCovers() async throws {
        let fixture = try await Fixture(now: "2026-12-15T12:00:00Z")
        defer { fixture.running.cancel() }
        try await fixture.spend(1, at: "2026-12-02T10:00:00Z", team: "ml", user: "ada", tags: ["prod", "eu"])
        try await fixture.spend(2, at: "2026-12-03T10:00:00Z", key: "k2", team: "ml", user: "bob", tags: ["prod"], model: "gpt-4o-mini")
        try await fixture.spend(4, at: "2026-12-04T10:00:00Z", team: "web", tags: ["eu"])
        // Last month: no month budget counts it.
        try await fixture.spend(8, at: "2026-11-30T23:59:59Z", team: "ml")
        let cases: [(BudgetScope, String?, Double)] = [
            (.tenant, nil, 7), (.init(team: "ml"), nil, 3), (.init(team: "ml"), "gpt-4o", 1), (.init(user: "bob"), nil, 2),
            (.init(keyID: "k2"), nil, 2), (.init(tag: "eu"), nil, 5), (.init(tag: "prod"), nil, 3), (.init(team: "ml", tag: "eu"), nil, 1),
            (.init(team: "none"), nil, 0),
        ]
        for (scope, model, expected) in cases {
            let budget = try await fixture.budget(scope, model: model, limit: 100)
            #expect(try await fixture.accounts.status(of: budget).spentUSD == expected, "\(scope) \(model ?? "")")
        }
        let total = try await fixture.budget(.tenant, period: .total, limit: 100)
        #expect(try await fixture.accounts.status(of: total).spentUSD == 15)
        #expect(try await fixture.store.budgets(tenant: fixture.tenant).count == cases.count + 1)
    }

    @Test func aCalendarMonthResetsAtTheMonthBoundaryOfItsZoneAndAlertsOncePerThreshold() async throws {
        // Paris is UTC+1 in winter: its February starts at 23:00 UTC on 31 January.
        let fixture = try await Fixture(now: "2026-01-31T22:30:00Z")
        defer { fixture.running.cancel() }
        let budget = try await fixture.budget(.tenant, zone: "Europe/Paris", limit: 10)
        try await fixture.spend(3, at: "2026-01-01T08:00:00Z")
        try await fixture.spend(5.5, at: "2026-01-31T22:00:00Z")
        let reconciler = fixture.reconciler()
        // The reconciler covers every tenant's budgets; this test reads its own budget's alerts.
        let alerts = { fixture.published.withLock { $0.filter { $0.budgetID == budget.id } } }

        // 30 days after the first spend it is still January in Paris: 8.5 of 10 spent, 50 % and 80 % alerted.
        var pass = try await reconciler.reconcile()
        #expect(pass.budgets >= 1)
        var status = try await fixture.accounts.status(of: budget)
        #expect(status.spentUSD == 8.5 && status.window.label == "m2026-01")
        #expect(status.window.end == ISO8601DateFormatter().date(from: "2026-01-31T23:00:00Z"))
        #expect(alerts().compactMap(\.threshold) == [0.5, 0.8])
        // Another pass, and a replay of the same spend: nothing new.
        pass = try await reconciler.reconcile()
        #expect(alerts().count == 2)
        let alert = try #require(alerts().last)
        #expect(alert.budgetID == budget.id && alert.kind == "threshold" && alert.window == "m2026-01" && alert.spentUSD == 8.5 && alert.limitUSD == 10)

        // 23:30 UTC on 31 January is February in Paris: the budget starts again from nothing.
        fixture.set("2026-01-31T23:30:00Z")
        status = try await fixture.accounts.status(of: budget)
        #expect(status.spentUSD == 0 && status.window.label == "m2026-02")
        #expect(status.window.end == ISO8601DateFormatter().date(from: "2026-02-28T23:00:00Z"))
        try await fixture.spend(4.2, at: "2026-01-31T23:40:00Z")
        pass = try await reconciler.reconcile()
        #expect(try await fixture.accounts.status(of: budget).spentUSD == 4.2)
        // February's 80 % is its own alert; at 42 % there is none yet.
        #expect(alerts().count == 2)
        try await fixture.spend(4, at: "2026-02-10T10:00:00Z")
        fixture.set("2026-02-10T11:00:00Z")
        _ = try await reconciler.reconcile()
        #expect(alerts().suffix(2).map { "\($0.window ?? "")@\($0.threshold ?? 0)" } == ["m2026-02@0.5", "m2026-02@0.8"])
    }

    @Test func theReconcilerRebuildsLostCountersAndRaisesThemToTheLedger() async throws {
        let fixture = try await Fixture(now: "2026-12-15T12:00:00Z")
        defer { fixture.running.cancel() }
        let budget = try await fixture.budget(.tenant, period: .day, limit: 100)
        let counters = BudgetCounters(redis: fixture.redis)
        let counter = BudgetCounters.Counter(budgetID: budget.id, window: fixture.accounts.window(of: budget))
        try await fixture.spend(2, at: "2026-12-15T09:00:00Z")
        let reconciler = fixture.reconciler()
        var pass = try await reconciler.reconcile()
        #expect(try await counters.state(of: counter)?.spentUSD == 2)

        // A settlement the ledger has not seen yet stays; the drift is it.
        try await counters.settle("in-flight", costUSD: 0.5, on: [counter])
        pass = try await reconciler.reconcile()
        #expect(try await counters.state(of: counter)?.spentUSD == 2.5)
        #expect(pass.driftUSD >= 0.5)

        // Redis loses the counter; the ledger has moved on: rebuilt at the ledger's 3.
        _ = try await fixture.redis.del(counter.key)
        try await fixture.spend(1, at: "2026-12-15T10:00:00Z")
        pass = try await reconciler.reconcile()
        #expect(pass.built >= 1)
        #expect(try await counters.state(of: counter) == .init(spentUSD: 3, reservedUSD: 0, built: true))
    }

    @Test func dailySpendFollowsTheBudgetsCalendar() async throws {
        let fixture = try await Fixture(now: "2026-12-15T12:00:00Z")
        defer { fixture.running.cancel() }
        let budget = try await fixture.budget(.init(team: "ml"), zone: "Europe/Paris", limit: 100)
        // 23:30 UTC on the 12th is the 13th in Paris.
        try await fixture.spend(1, at: "2026-12-12T10:00:00Z", team: "ml")
        try await fixture.spend(2, at: "2026-12-12T23:30:00Z", team: "ml")
        // 22:00 UTC on the 14th is still the 14th there (23:00).
        try await fixture.spend(4, at: "2026-12-14T22:00:00Z", team: "ml")
        try await fixture.spend(8, at: "2026-12-14T10:00:00Z", team: "web")
        let paris = ISO8601DateFormatter().date(from: "2026-12-14T23:00:00Z")!
        #expect(try await fixture.store.dailySpent(budget, days: 4, before: paris) == [0, 1, 2, 4])
        let later = ISO8601DateFormatter().date(from: "2026-12-15T23:00:00Z")!
        #expect(try await fixture.store.dailySpent(budget, days: 3, before: later) == [2, 4, 0])
    }
}
