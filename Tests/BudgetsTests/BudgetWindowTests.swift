import ConduitProtocol
import Foundation
import Testing

/// Periods follow the budget's calendar, not a count of seconds.
@Suite struct BudgetWindowTests {
    static func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test func aCalendarMonthEndsAtTheMonthBoundaryOfItsZone() throws {
        let paris = try #require(TimeZone(identifier: "Europe/Paris"))
        // 23:30 UTC on 31 January is already February in Paris.
        let late = BudgetPeriod.month.window(containing: Self.date("2026-01-31T23:30:00Z"), in: paris)
        #expect(late.label == "m2026-02")
        #expect(late.start == Self.date("2026-01-31T23:00:00Z"))
        // February has 28 days: the window is not 30 days long, and March starts on CET→CEST's eve.
        #expect(late.end == Self.date("2026-02-28T23:00:00Z"))
        let utc = BudgetPeriod.month.window(containing: Self.date("2026-01-31T23:30:00Z"), in: .gmt)
        #expect(utc.label == "m2026-01")
        #expect(utc.end == Self.date("2026-02-01T00:00:00Z"))
    }

    @Test func aDayFollowsDaylightSavingTime() throws {
        let paris = try #require(TimeZone(identifier: "Europe/Paris"))
        // 29 March 2026 is 23 hours long in Paris.
        let window = BudgetPeriod.day.window(containing: Self.date("2026-03-29T12:00:00Z"), in: paris)
        #expect(window.label == "d2026-03-29")
        let start = try #require(window.start), end = try #require(window.end)
        #expect(end.timeIntervalSince(start) == 23 * 3600)
    }

    @Test func aWeekStartsOnMonday() {
        // 1 December 2026 is a Tuesday.
        let window = BudgetPeriod.week.window(containing: Self.date("2026-12-01T10:00:00Z"), in: .gmt)
        #expect(window.label == "w2026-11-30")
        #expect(window.start == Self.date("2026-11-30T00:00:00Z"))
        #expect(window.end == Self.date("2026-12-07T00:00:00Z"))
        // Across a year's end, the Monday names the week.
        #expect(BudgetPeriod.week.window(containing: Self.date("2027-01-01T10:00:00Z"), in: .gmt).label == "w2026-12-28")
    }

    @Test func aLifetimeBudgetNeverResets() {
        let window = BudgetPeriod.total.window(containing: Date(), in: .gmt)
        #expect(window == BudgetWindow(label: "total", start: nil, end: nil))
    }

    @Test func scopesMatchEveryFieldTheyName() {
        let request = SpendAttributes(tenant: "acme", keyID: "k1", team: "ml", user: "ada", tags: ["prod", "eu"], model: "gpt-4o")
        #expect(Budget(id: "b", tenant: "acme", scope: .tenant, period: .day, limitUSD: 1).applies(to: request))
        #expect(!Budget(id: "b", tenant: "other", scope: .tenant, period: .day, limitUSD: 1).applies(to: request))
        #expect(Budget(id: "b", tenant: "acme", scope: .init(team: "ml"), model: "gpt-4o", period: .day, limitUSD: 1).applies(to: request))
        #expect(!Budget(id: "b", tenant: "acme", scope: .init(team: "ml"), model: "gpt-4o-mini", period: .day, limitUSD: 1).applies(to: request))
        #expect(Budget(id: "b", tenant: "acme", scope: .init(team: "ml", user: "ada"), period: .day, limitUSD: 1).applies(to: request))
        #expect(!Budget(id: "b", tenant: "acme", scope: .init(team: "ml", user: "bob"), period: .day, limitUSD: 1).applies(to: request))
        #expect(Budget(id: "b", tenant: "acme", scope: .init(tag: "eu"), period: .day, limitUSD: 1).applies(to: request))
        #expect(!Budget(id: "b", tenant: "acme", scope: .init(tag: "us"), period: .day, limitUSD: 1).applies(to: request))
        #expect(!Budget(id: "b", tenant: "acme", scope: .init(keyID: "k2"), period: .day, limitUSD: 1).applies(to: request))
        // A team budget does not apply to a request without a team.
        var teamless = request
        teamless.team = nil
        #expect(!Budget(id: "b", tenant: "acme", scope: .init(team: "ml"), period: .day, limitUSD: 1).applies(to: teamless))
    }

    @Test func scopesDecodeFromTheDocumentedShapes() throws {
        let decode = { (json: String) in try JSONDecoder().decode(BudgetScope.self, from: Data(json.utf8)) }
        #expect(try decode(#"{"tenant": true}"#) == .tenant)
        #expect(try decode(#"{"team": "ml"}"#) == BudgetScope(team: "ml"))
        #expect(try decode(#"{"key_id": "k1", "tag": "eu"}"#) == BudgetScope(keyID: "k1", tag: "eu"))
        #expect(throws: DecodingError.self) { try decode("{}") }
        #expect(throws: DecodingError.self) { try decode(#"{"tenant": true, "team": "ml"}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"team": ""}"#) }
        let encoded = try JSONEncoder().encode(BudgetScope.tenant)
        #expect(String(decoding: encoded, as: UTF8.self) == #"{"tenant":true}"#)
    }
}
