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

/// `GET /v1/usage` through the cost-service's router over an in-process report (the
/// Postgres report is tested with the ledger).
struct UsageAPITests {
    final class FakeReport: UsageReport {
        let asked = Locked<[UsageQuery]>([])
        let rows: [UsageRow]
        let tooMany: Bool
        init(rows: [UsageRow], tooMany: Bool = false) {
            self.rows = rows
            self.tooMany = tooMany
        }
        func rows(_ query: UsageQuery) async throws -> [UsageRow] {
            asked.withLock { $0.append(query) }
            if tooMany { throw UsageReportError.tooManyRows }
            return rows
        }
    }

    static let rows = [
        UsageRow(model: "gpt,4", keyID: "=cmd", day: "2026-01-01", requests: 3, promptTokens: 30, completionTokens: 6, cachedTokens: 3,
                 reasoningTokens: 1, estimatedRequests: 1, costUSD: 0.00012, savedUSD: 0),
        UsageRow(model: "small", keyID: nil, day: "2026-01-02", requests: 1, promptTokens: 10, completionTokens: 2, cachedTokens: 0,
                 reasoningTokens: 0, estimatedRequests: 0, costUSD: 0.5, savedUSD: 0.25),
    ]

    static func app(_ report: FakeReport) throws -> some ApplicationProtocol {
        let configuration = try ServiceConfiguration(service: .costService, environment: ConduitEnvironment(TestIdentity.environment))
        return Application(router: try buildRouter(configuration: configuration, report: report, budgets: BudgetController(accounts: BudgetAccounts(store: MemoryBudgetStore(), counters: MemoryCounters(), now: { Date() })), registry: PrometheusCollectorRegistry()))
    }

    @Test func usageIsTheCallersTenantsAsJSONOrCSV() async throws {
        let report = FakeReport(rows: Self.rows)
        try await Self.app(report).test(.router) { client in
            let json = try await client.execute(uri: "/v1/usage?from=2026-01-01&to=2026-01-31&group_by=model,key,day", method: .get,
                                                headers: TestIdentity.fields(tenant: "acme"))
            #expect(json.status == .ok)
            let body = try #require(JSONValue.parse(Array(json.body.readableBytesView)))
            #expect(body["object"] == "usage" && body["from"] == "2026-01-01" && body["to"] == "2026-01-31")
            #expect(body["group_by"] == ["model", "key", "day"])
            #expect(body["data"]?[1]?["cost_usd"] == 0.5 && body["data"]?[1]?["saved_usd"] == 0.25)

            var headers = TestIdentity.fields(tenant: "acme")
            headers[.accept] = "text/csv"
            let csv = try await client.execute(uri: "/v1/usage?from=2026-01-01&to=2026-01-31&group_by=model,key", method: .get, headers: headers)
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            let lines = String(buffer: csv.body).components(separatedBy: "\r\n")
            #expect(lines[0] == "model,key_id,requests,prompt_tokens,completion_tokens,cached_tokens,reasoning_tokens,estimated_requests,cost_usd,saved_usd")
            // A comma is quoted; a leading '=' cannot become a spreadsheet formula.
            #expect(lines[1] == #""gpt,4",'=cmd,3,30,6,3,1,1,0.0001200000,0.0000000000"#)
            #expect(lines[2] == "small,,1,10,2,0,0,0,0.5000000000,0.2500000000")
            #expect(try await client.execute(uri: "/v1/usage?format=csv", method: .get, headers: TestIdentity.fields(tenant: "acme")).headers[.contentType]?.hasPrefix("text/csv") == true)
            // No signed identity, no usage.
            #expect(try await client.execute(uri: "/v1/usage", method: .get).status == .unauthorized)
        }
        let asked = report.asked.withLock { $0 }
        #expect(asked.allSatisfy { $0.tenant == "acme" })
        #expect(asked.first?.groupBy == [.model, .key, .day])
        // Without a range: the last 30 days, by day.
        #expect(asked.last?.groupBy == [.day])
        #expect(asked.count == 3)
    }

    @Test func badQueriesNameTheParameter() async throws {
        let report = FakeReport(rows: [])
        try await Self.app(report).test(.router) { client in
            let cases: [(String, String, String)] = [
                ("from=2026-13-01", "from", "YYYY-MM-DD"),
                ("to=yesterday", "to", "YYYY-MM-DD"),
                ("from=2026-02-01&to=2026-01-01", "from", "after"),
                ("from=2024-01-01&to=2026-01-01", "from", "366 days"),
                ("group_by=colour", "group_by", "unknown dimension 'colour'"),
                ("group_by=", "group_by", "names no dimension"),
                ("format=xml", "format", "json or csv"),
            ]
            for (query, param, words) in cases {
                let response = try await client.execute(uri: "/v1/usage?" + query, method: .get, headers: TestIdentity.fields(tenant: "acme"))
                let error = JSONValue.parse(Array(response.body.readableBytesView))?["error"]
                #expect(response.status == .badRequest, "\(query)")
                #expect(error?["param"]?.stringValue == param, "\(query)")
                #expect(error?["message"]?.stringValue?.contains(words) == true, "\(query): \(String(describing: error))")
            }
        }
        // No bad query reached the report.
        #expect(report.asked.withLock { $0.isEmpty })
    }

    @Test func anAnswerTooLargeToHoldAsksForANarrowerQuery() async throws {
        try await Self.app(FakeReport(rows: [], tooMany: true)).test(.router) { client in
            let response = try await client.execute(uri: "/v1/usage?group_by=key,day", method: .get, headers: TestIdentity.fields(tenant: "acme"))
            #expect(response.status == .badRequest)
            let error = JSONValue.parse(Array(response.body.readableBytesView))?["error"]
            #expect(error?["param"] == "group_by")
            #expect(error?["message"]?.stringValue?.contains("more than \(UsageQuery.maxRows) groups") == true)
        }
    }

    @Test func defaultsCoverTheLastThirtyDaysThroughToday() throws {
        let today = Date(timeIntervalSince1970: 1_767_225_600 + 3600)  // 2026-01-01T01:00Z
        let query = try UsageQuery(tenant: "t", parameters: [:], today: today)
        #expect(query.from == "2025-12-03" && query.to == "2026-01-01")
    }
}
