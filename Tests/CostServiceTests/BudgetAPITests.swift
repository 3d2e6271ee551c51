import Budgets
import ConduitKit
import ConduitProtocol
@testable import CostService
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing
import TestSupport

/// `/v1/budgets` through the cost-service's router over in-memory budgets and counters.
struct BudgetAPITests {
    struct Harness {
        let store = MemoryBudgetStore()
        let counters = MemoryCounters()
        let clock = Locked(BudgetWindowClock.date("2026-12-15T12:00:00Z"))

        var accounts: BudgetAccounts {
            let clock = self.clock
            return BudgetAccounts(store: store, counters: counters, now: { clock.withLock { $0 } })
        }

        func app(maxPerTenant: Int = 1000) throws -> some ApplicationProtocol {
            let configuration = try ServiceConfiguration(service: .costService, environment: ConduitEnvironment(TestIdentity.environment))
            return Application(router: try buildRouter(
                configuration: configuration, report: UsageAPITests.FakeReport(rows: []),
                budgets: BudgetController(accounts: accounts, maxPerTenant: maxPerTenant), registry: PrometheusCollectorRegistry()))
        }
    }

    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func body(_ response: TestResponse) throws -> JSONValue { try #require(JSONValue.parse(Array(response.body.readableBytesView))) }

    @Test func anAdminCreatesABudgetAndEveryoneInTheTenantReadsItsSpend() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let created = try await client.execute(
                uri: "/v1/budgets", method: .post, headers: TestIdentity.fields(tenant: "acme"),
                body: Self.json(#"{"name": "ml monthly", "scope": {"team": "ml"}, "model": "gpt-4o", "period": "month", "limit_usd": 500}"#))
            #expect(created.status == .created)
            let budget = try Self.body(created)
            let id = try #require(budget["id"]?.stringValue)
            #expect(id.hasPrefix("bud_"))
            #expect(budget["object"] == "budget" && budget["scope"] == ["team": "ml"] && budget["model"] == "gpt-4o")
            #expect(budget["alert_thresholds"] == [0.5, 0.8, 1.0] && budget["time_zone"] == "UTC")
            #expect(budget["spent_usd"] == 0 && budget["reserved_usd"] == 0 && budget["remaining_usd"] == 500)
            #expect(budget["period_start"] == "2026-12-01T00:00:00Z" && budget["resets_at"] == "2027-01-01T00:00:00Z")

            // The ledger has spend the counter does not: reading builds the counter from it.
            harness.store.spent.withLock { $0[id] = 120.5 }
            harness.counters.states.withLock { $0 = [:] }
            let viewer = TestIdentity.fields(tenant: "acme", roles: ["viewer"])
            let read = try Self.body(try await client.execute(uri: "/v1/budgets/\(id)", method: .get, headers: viewer))
            #expect(read["spent_usd"] == 120.5 && read["remaining_usd"] == 379.5)
            let list = try Self.body(try await client.execute(uri: "/v1/budgets", method: .get, headers: viewer))
            #expect(list["object"] == "list" && list["data"]?[0]?["id"]?.stringValue == id)

            // Another tenant sees nothing of it.
            let other = try await client.execute(uri: "/v1/budgets/\(id)", method: .get, headers: TestIdentity.fields(tenant: "globex"))
            #expect(other.status == .notFound)
            #expect(try Self.body(try await client.execute(uri: "/v1/budgets", method: .get, headers: TestIdentity.fields(tenant: "globex")))["data"] == [])
        }
    }

    @Test func onlyAdminsChangeBudgets() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let developer = TestIdentity.fields(tenant: "acme", roles: ["developer"])
            let refused = try await client.execute(uri: "/v1/budgets", method: .post, headers: developer,
                                                   body: Self.json(#"{"scope": {"tenant": true}, "period": "day", "limit_usd": 5}"#))
            #expect(refused.status == .forbidden)
            #expect(try Self.body(refused)["error"]?["type"] == "permission_error")
            let created = try Self.body(try await client.execute(
                uri: "/v1/budgets", method: .post, headers: TestIdentity.fields(tenant: "acme"),
                body: Self.json(#"{"scope": {"tenant": true}, "period": "day", "limit_usd": 5}"#)))
            let id = try #require(created["id"]?.stringValue)
            for (method, body) in [(HTTPRequest.Method.patch, Self.json(#"{"limit_usd": 1}"#)), (.delete, ByteBuffer())] {
                let response = try await client.execute(uri: "/v1/budgets/\(id)", method: method, headers: developer, body: body)
                #expect(response.status == .forbidden)
            }
            #expect(harness.store.budgetsByID.withLock { $0[id]?.limitUSD } == 5)
        }
    }

    @Test func aBudgetsLimitThresholdsAndNameChangeButNotWhatItCounts() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let admin = TestIdentity.fields(tenant: "acme")
            let created = try Self.body(try await client.execute(
                uri: "/v1/budgets", method: .post, headers: admin, body: Self.json(#"{"scope": {"user": "ada"}, "period": "week", "limit_usd": 5}"#)))
            let id = try #require(created["id"]?.stringValue)
            let changed = try await client.execute(uri: "/v1/budgets/\(id)", method: .patch, headers: admin,
                                                   body: Self.json(#"{"limit_usd": 7.5, "alert_thresholds": [0.9, 0.25, 0.9], "name": "ada"}"#))
            #expect(changed.status == .ok)
            let body = try Self.body(changed)
            #expect(body["limit_usd"] == 7.5 && body["alert_thresholds"] == [0.25, 0.9] && body["name"] == "ada")
            for field in [#"{"period": "day"}"#, #"{"scope": {"tenant": true}}"#, #"{"model": "x"}"#, #"{"time_zone": "Europe/Paris"}"#] {
                let refused = try await client.execute(uri: "/v1/budgets/\(id)", method: .patch, headers: admin, body: Self.json(field))
                #expect(refused.status == .badRequest)
            }
            let deleted = try await client.execute(uri: "/v1/budgets/\(id)", method: .delete, headers: admin)
            #expect(try Self.body(deleted) == ["id": .string(id), "object": "budget.deleted", "deleted": true])
            #expect(try await client.execute(uri: "/v1/budgets/\(id)", method: .get, headers: admin).status == .notFound)
        }
    }

    @Test func badBudgetsAreRefusedWithTheFieldNamed() async throws {
        let harness = Harness()
        try await harness.app(maxPerTenant: 1).test(.router) { client in
            let admin = TestIdentity.fields(tenant: "acme")
            let cases: [(String, String)] = [
                (#"{"period": "month", "limit_usd": 5}"#, "scope"),
                (#"{"scope": {}, "period": "month", "limit_usd": 5}"#, "scope"),
                (#"{"scope": {"tenant": true}, "limit_usd": 5}"#, "period"),
                (#"{"scope": {"tenant": true}, "period": "fortnight", "limit_usd": 5}"#, "period"),
                (#"{"scope": {"tenant": true}, "period": "month"}"#, "limit_usd"),
                (#"{"scope": {"tenant": true}, "period": "month", "limit_usd": -1}"#, "limit_usd"),
                (#"{"scope": {"tenant": true}, "period": "month", "limit_usd": "5"}"#, "limit_usd"),
                (#"{"scope": {"tenant": true}, "period": "month", "limit_usd": 5, "alert_thresholds": [0]}"#, "alert_thresholds"),
                (#"{"scope": {"tenant": true}, "period": "month", "limit_usd": 5, "time_zone": "Mars/Olympus"}"#, "time_zone"),
                (#"{"scope": {"tenant": true}, "period": "month", "limit_usd": 5, "webhook_url": "file:///etc/passwd"}"#, "webhook_url"),
            ]
            for (body, field) in cases {
                let response = try await client.execute(uri: "/v1/budgets", method: .post, headers: admin, body: Self.json(body))
                #expect(response.status == .badRequest, "\(body)")
                let error = try Self.body(response)["error"]
                #expect(error?["type"] == "invalid_request_error")
                #expect(error?["param"]?.stringValue?.hasPrefix(field) == true || error?["message"]?.stringValue?.contains(field) == true, "\(body): \(String(describing: error))")
            }
            let first = try await client.execute(uri: "/v1/budgets", method: .post, headers: admin,
                                                 body: Self.json(#"{"scope": {"tenant": true}, "period": "total", "limit_usd": 5}"#))
            #expect(first.status == .created)
            #expect(try Self.body(first)["resets_at"] == .null)
            let second = try await client.execute(uri: "/v1/budgets", method: .post, headers: admin,
                                                  body: Self.json(#"{"scope": {"tenant": true}, "period": "total", "limit_usd": 5}"#))
            #expect(try Self.body(second)["error"]?["code"] == "too_many_budgets")
        }
    }

    @Test func theOrchestratorReadsDefinitionsAndBuildsLostCounters() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let admin = TestIdentity.fields(tenant: "acme")
            let created = try Self.body(try await client.execute(
                uri: "/v1/budgets", method: .post, headers: admin, body: Self.json(#"{"scope": {"key_id": "k1"}, "period": "day", "limit_usd": 2}"#)))
            let id = try #require(created["id"]?.stringValue)
            let definitions = try await client.execute(uri: "/internal/budgets", method: .get, headers: admin)
            let decoded = try EventCoding.decoder().decode(BudgetDefinitions.self, from: Data(definitions.body.readableBytesView))
            #expect(decoded.data.map(\.id) == [id] && decoded.data[0].scope == BudgetScope(keyID: "k1"))

            harness.counters.states.withLock { $0 = [:] }
            harness.store.spent.withLock { $0[id] = 1.25 }
            let built = try await client.execute(uri: "/internal/budgets/counters", method: .post, headers: admin,
                                                 body: Self.json(#"{"budget_ids": ["\#(id)", "bud_unknown"]}"#))
            #expect(try Self.body(built)["built"] == 1)
            let window = BudgetPeriod.day.window(containing: harness.clock.withLock { $0 }, in: .gmt)
            #expect(harness.counters.states.withLock { $0[.init(budgetID: id, window: window)] }?.spentUSD == 1.25)
            // Another tenant cannot build (or learn of) this tenant's counters.
            let foreign = try await client.execute(uri: "/internal/budgets/counters", method: .post, headers: TestIdentity.fields(tenant: "globex"),
                                                   body: Self.json(#"{"budget_ids": ["\#(id)"]}"#))
            #expect(try Self.body(foreign)["built"] == 0)
        }
    }
}

extension BudgetAPITests {
    @Test func oneBudgetReadAloneCarriesItsForecast() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let admin = TestIdentity.fields(tenant: "acme")
            let created = try Self.body(try await client.execute(
                uri: "/v1/budgets", method: .post, headers: admin, body: Self.json(#"{"scope": {"tenant": true}, "period": "month", "limit_usd": 100}"#)))
            let id = try #require(created["id"]?.stringValue)
            #expect(created["forecast"] == nil)
            // No history yet: nothing more is forecast to be spent.
            let empty = try Self.body(try await client.execute(uri: "/v1/budgets/\(id)", method: .get, headers: admin))["forecast"]
            #expect(empty?["method"] == "seasonal-naive" && empty?["period_end_usd"] == 0 && empty?["runs_out_on"] == .null)

            // Four weeks at $5 a day, $50 spent this month; at noon on the 15th: half of today and 16 more days at $5.
            harness.store.daily.withLock { $0[id] = Array(repeating: 5, count: 28) }
            harness.store.spent.withLock { $0[id] = 50 }
            harness.counters.states.withLock { $0 = [:] }
            let forecast = try Self.body(try await client.execute(uri: "/v1/budgets/\(id)", method: .get, headers: admin))["forecast"]
            #expect(forecast?["method"] == "holt-winters")
            #expect(abs((forecast?["period_end_usd"]?.doubleValue ?? 0) - 132.5) < 1e-6, "\(String(describing: forecast))")
            // 50 + 2.5 + 5 × 9.5: the limit is reached on the tenth day after today.
            #expect(forecast?["runs_out_on"] == "2026-12-25")
            let list = try Self.body(try await client.execute(uri: "/v1/budgets", method: .get, headers: admin))
            #expect(list["data"]?[0]?["forecast"] == nil)
        }
    }
}

enum BudgetWindowClock {
    static func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
}
