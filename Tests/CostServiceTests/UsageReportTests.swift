@testable import CostService
import Foundation
import Testing
import TestSupport

/// `GET /v1/usage`'s Postgres report over real ledger rows (BudgetLedgerTests' fixture).
@Suite(.timeLimit(.minutes(1)))
struct UsageReportTests {
    @Test func usageGroupsByUserTeamAndTagFromTheLedgerRows() async throws {
        let fixture = try await BudgetLedgerTests.Fixture(now: "2026-12-15T12:00:00Z")
        defer { fixture.running.cancel() }
        try await fixture.spend(1, at: "2026-12-02T10:00:00Z", team: "ml", user: "ada", tags: ["prod", "eu"])
        try await fixture.spend(2, at: "2026-12-02T23:59:00Z", key: "k2", team: "ml", user: "bob", tags: ["prod"])
        try await fixture.spend(4, at: "2026-12-03T00:01:00Z", team: "web")
        // Outside the range.
        try await fixture.spend(8, at: "2026-12-04T00:00:00Z", team: "ml")
        let report = PostgresUsageReport(postgres: fixture.postgres)
        func rows(_ groupBy: String) async throws -> [UsageRow] {
            try await report.rows(try UsageQuery(tenant: fixture.tenant, parameters: ["from": "2026-12-02", "to": "2026-12-03", "group_by": groupBy]))
        }
        let teams = try await rows("team")
        #expect(teams.map { "\($0.team ?? "-")=\($0.costUSD)/\($0.requests)" } == ["ml=3.0/2", "web=4.0/1"])
        let users = try await rows("user,day")
        #expect(users.map { "\($0.user ?? "-")@\($0.day ?? "")=\($0.costUSD)" } == ["-@2026-12-03=4.0", "ada@2026-12-02=1.0", "bob@2026-12-02=2.0"])
        // A request counts under each of its tags, and under none when it has none.
        let tags = try await rows("tag")
        #expect(tags.map { "\($0.tag ?? "-")=\($0.costUSD)" } == ["-=4.0", "eu=1.0", "prod=3.0"])
        let keys = try await rows("key,team")
        #expect(keys.map { "\($0.keyID ?? "-")/\($0.team ?? "-")" } == ["k1/ml", "k1/web", "k2/ml"])
        #expect(UsageRow.csvHeader([.tag, .user]).hasPrefix("tag,user,requests"))
    }
}
