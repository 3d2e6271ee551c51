import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Redis
import Testing
import TestSupport

/// Budgets as deployed: gateway, orchestrator and cost-service processes, the test stack's
/// Postgres, Redis and Kafka, and a local OpenAI-compatible upstream that reports usage.
@Suite(.timeLimit(.minutes(5)))
struct BudgetProcessTests {
    /// Model `priced` at $10 per million prompt tokens and $20 per million completion tokens;
    /// every answer reports 12 + 40 tokens ($0.00092) after 50 ms.
    static func upstream() throws -> TestHTTPServer {
        try TestHTTPServer { _, connection in
            usleep(50_000)
            let answer = #"{"id":"up","object":"chat.completion","created":1,"model":"priced","choices":[{"index":0,"message":{"role":"assistant","content":"Something."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}}"#
            connection.respond(headers: ["Content-Type": "application/json"], body: Array(answer.utf8))
        }
    }

    static let answerCost = (12 * 10.0 + 40 * 20.0) / 1e6
    /// "Tell me something." is 18 bytes: 6 tokens by the generous estimate, plus 8 for the message.
    static let maximumCost = (14 * 10.0 + 50 * 20.0) / 1e6
    static let request = #"{"model":"priced","max_tokens":50,"messages":[{"role":"user","content":"Tell me something."}]}"#

    @Test("200 concurrent requests against a budget worth 50: never more than one request over, every refusal in the envelope, the ledger equal to the events; counters Redis lost are rebuilt from the ledger")
    func concurrentRequestsCannotOverspend() async throws {
        let upstream = try Self.upstream()
        defer { upstream.stop() }
        let catalog = TestEnvironment.scratchDirectory("budgets") + "/models.yaml"
        try """
            models:
              - name: priced
                owned_by: tests
                deployments:
                  - id: priced-local
                    provider: openai
                    model: priced
                    base_url: \(upstream.baseURL)/v1
                    context_window: 4096
                    price_per_million: {input: 10, output: 20}
            """.write(toFile: catalog, atomically: true, encoding: .utf8)
        let offset = 140
        let url = { (service: String) in "http://127.0.0.1:\(ServiceProcessTests.port(of: service) + offset)" }
        let usageTopic = TestEnvironment.uniqueName("usage")
        let alertsTopic = TestEnvironment.uniqueName("alerts")
        let tenant = TestEnvironment.uniqueName("tenant")
        let key = "cdt-test-\(UUID().uuidString)"
        let costService = try ServiceProcessTests.RunningService("cost-service", portOffset: offset, extraEnvironment: [
            "CONDUIT_COST_SERVICE_USAGE_TOPIC": usageTopic, "CONDUIT_COST_SERVICE_GROUP": TestEnvironment.uniqueName("cost"),
            "CONDUIT_BUDGET_RECONCILE_S": "1", "CONDUIT_COST_SERVICE_ALERTS_TOPIC": alertsTopic,
        ])
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: offset, extraEnvironment: [
            "CONDUIT_MODEL_CATALOG": catalog, "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": usageTopic, "CONDUIT_CACHE_ENABLED": "false",
            "CONDUIT_COST_SERVICE_URL": url("cost-service"), "CONDUIT_BUDGET_UNAVAILABLE": "refuse", "CONDUIT_PROVIDER_MAX_RETRIES": "0",
        ])
        let gateway = try ServiceProcessTests.RunningService("gateway", portOffset: offset, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": key, "CONDUIT_ADMIN_TENANT": tenant,
            "CONDUIT_ORCHESTRATOR_URL": url("orchestrator"), "CONDUIT_COST_SERVICE_URL": url("cost-service"),
        ])
        defer {
            for service in [costService, orchestrator, gateway] { service.process.signal(SIGKILL) }
        }
        for service in [costService, orchestrator, gateway] { try await service.waitUntilReady() }
        let auth = [("Authorization", "Bearer \(key)")]

        let limit = 50 * Self.answerCost
        let created = try await gateway.post("/v1/budgets", #"{"name":"fifty","scope":{"tenant":true},"period":"month","limit_usd":\#(limit)}"#, headers: auth)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(JSONValue.parse(Array(created.body.utf8))?["id"]?.stringValue)

        let client = HTTPClient(configuration: .init(maxConnections: 200, maxConnectionsPerHost: 200), logger: Logger(label: "load"))
        let outcomes = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let response = try await client.execute(HTTPRequest(
                        method: "POST", url: gateway.base + "/v1/chat/completions", headers: auth + [("Content-Type", "application/json")],
                        body: Array(Self.request.utf8), timeout: .seconds(120)))
                    return (response.status, String(decoding: try await response.body.collect(upTo: 1 << 20), as: UTF8.self))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        await client.shutdown()
        let served = outcomes.filter { $0.0 == 200 }
        let refused = outcomes.filter { $0.0 != 200 }
        #expect(served.count + refused.count == 200)
        // Holds at the maximum cost leave room for at least 40 at once; settling to the real cost lets 50 through.
        #expect((40...50).contains(served.count), "\(served.count) served")
        for (status, body) in refused {
            #expect(status == 429, "\(body)")
            let error = JSONValue.parse(Array(body.utf8))?["error"]
            #expect(error?["type"] == "budget_exceeded" && error?["code"] == "insufficient_quota")
            let message = error?["message"]?.stringValue ?? ""
            #expect(message.contains("'fifty' (" + id + ")"), "\(message)")
        }

        let budget = try await gateway.get("/v1/budgets/\(id)")
        #expect(budget.status == 401, "the gateway needs the key")
        // Holds are settled after their responses: within moments nothing is held any more.
        var view: JSONValue?
        let settled = try await eventually(within: .seconds(10)) {
            let status = try await gateway.http.execute(HTTPRequest(url: gateway.base + "/v1/budgets/\(id)", headers: auth))
            view = JSONValue.parse(try await status.body.collect(upTo: 1 << 20))
            return view?["reserved_usd"] == 0
        }
        #expect(settled, "\(String(describing: view))")
        let spent = try #require(view?["spent_usd"]?.doubleValue)
        #expect(spent <= limit + Self.maximumCost, "spent \(spent) of \(limit)")
        #expect(abs(spent - Double(served.count) * Self.answerCost) < 1e-9)
        print(String(format: "budget-process: served=%d refused=%d spent_usd=%.6f limit_usd=%.6f overspend_usd=%.6f max_request_usd=%.6f",
                     served.count, refused.count, spent, limit, max(0, spent - limit), Self.maximumCost))

        // Every event is in the ledger once; the ledger's total is the events' total.
        let events = try await TestEnvironment.readMessages(usageTopic, count: 200).map { try EventCoding.decoder().decode(UsageEvent.self, from: Data($0.value)) }
        #expect(events.filter { $0.status == "ok" }.count == served.count)
        #expect(events.filter { $0.status == "budget_exceeded" }.allSatisfy { ($0.costUSD ?? 0) == 0 })
        let eventTotal = events.compactMap(\.costUSD).reduce(0, +)
        let postgres = PostgresClient(configuration: .init(port: TestEnvironment.postgresPort), logger: Logger(label: "check"))
        defer { postgres.shutdown() }
        func ledger() async throws -> (rows: Int, total: Double) {
            let row = try await postgres.query("SELECT count(*)::bigint, coalesce(sum(cost_usd), 0)::text FROM cost.usage_ledger WHERE tenant_id = $1", tenant).first
            return (Int(try row?.decode(Int64.self, at: 0) ?? 0), Double(try row?.decode(String.self, at: 1) ?? "") ?? -1)
        }
        #expect(try await eventually(within: .seconds(60)) { try await ledger().rows == 200 })
        #expect(abs(try await ledger().total - eventTotal) < 1e-9)

        // Redis loses the budget's counters: the next request builds them from the ledger and is refused as before.
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort), logger: Logger(label: "check"))
        let window = BudgetPeriod.month.window(containing: Date(), in: .gmt).label
        #expect(try await redis.del("spend:\(id):\(window)", "spend:\(id):\(window):open") >= 1)
        let after = try await gateway.post("/v1/chat/completions", Self.request, headers: auth)
        #expect(after.status == 429, "\(after.body)")
        let rebuilt = try await gateway.http.execute(HTTPRequest(url: gateway.base + "/v1/budgets/\(id)", headers: auth))
        let rebuiltView = try #require(JSONValue.parse(try await rebuilt.body.collect(upTo: 1 << 20)))
        #expect(abs((rebuiltView["spent_usd"]?.doubleValue ?? 0) - spent) < 1e-9)

        // The ledger's spend crossed 50 % and 80 % (100 % too when all 50 got through): one alert each,
        // recorded and delivered once however many passes the reconciler makes (one a second here).
        // Read from the alerts table: every cost-service on the test database reconciles every
        // budget, as replicas do, and whichever records a crossing first publishes it on its topic.
        let crossed = [0.5, 0.8, 1.0].filter { spent >= $0 * limit - 1e-12 }
        func alerted() async throws -> [Double] {
            try await postgres.query(
                "SELECT threshold FROM cost.budget_alerts WHERE budget_id = $1 AND window_label = $2 AND delivered_at IS NOT NULL ORDER BY threshold",
                id, window).map { try $0.decode(Double.self, at: 0) }
        }
        #expect(try await eventually(within: .seconds(30)) { try await alerted() == crossed })
        try await Task.sleep(for: .seconds(2))
        #expect(try await alerted() == crossed)
        // As a rule its own cost-service is first (it reconciles every second): what it published
        // on its topic names the budget, its window and the threshold.
        let published = try? await withTimeout(.seconds(20)) {
            try await TestEnvironment.readMessages(alertsTopic, count: 1).compactMap { try? EventCoding.decoder().decode(AlertEvent.self, from: Data($0.value)) }
        }
        // (Its first alert may be another test's budget's: every cost-service reconciles every budget.)
        if let alert = published?.first(where: { $0.budgetID == id }) {
            #expect(crossed.contains(alert.threshold ?? -1) && alert.window == window && alert.tenant == tenant)
        }

        // Raising the limit makes room again, on the next request.
        let raised = try await gateway.http.execute(HTTPRequest(
            method: "PATCH", url: gateway.base + "/v1/budgets/\(id)", headers: auth + [("Content-Type", "application/json")],
            body: Array(#"{"limit_usd":\#(limit * 2)}"#.utf8)))
        #expect(raised.status == 200)
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await gateway.post("/v1/chat/completions", Self.request, headers: auth).status == 200)
        for service in [costService, orchestrator, gateway] { await service.http.shutdown() }
    }
}
