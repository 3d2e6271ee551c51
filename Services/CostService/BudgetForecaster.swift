import ConduitProtocol
import Foundation

/// A budget's period-end spend and the day it runs out, from the ledger's last eight weeks of
/// daily spend in its scope (`SpendForecast`): what is spent, plus the forecast for what is left
/// of today (in proportion) and of every later day of the period. A lifetime budget looks 90
/// days ahead for the day it runs out.
struct BudgetForecaster: Sendable {
    let store: any BudgetStore
    static let historyDays = 56
    static let lifetimeHorizon = 90

    struct Forecast: Sendable, Equatable, Encodable {
        /// Nil for a lifetime budget.
        var periodEndUSD: Double?
        /// The day (in the budget's zone) the spend reaches the limit, if it does in the horizon.
        var runsOutOn: String?
        /// `holt-winters`, or `seasonal-naive` with under two weeks of history.
        var method: String

        enum CodingKeys: String, CodingKey {
            case method
            case periodEndUSD = "period_end_usd"
            case runsOutOn = "runs_out_on"
        }

        /// Both fields always present, null when there is nothing to say.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(periodEndUSD, forKey: .periodEndUSD)
            try container.encode(runsOutOn, forKey: .runsOutOn)
            try container.encode(method, forKey: .method)
        }
    }

    func forecast(_ budget: Budget, status: BudgetAccounts.Status, now: Date) async throws -> Forecast {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: budget.timeZone) ?? .gmt
        let today = calendar.startOfDay(for: now)
        let history = try await store.dailySpent(budget, days: Self.historyDays, before: today)
        // The history holds the days with spend since the first of them: leading empty days are
        // before the budget's scope had any traffic.
        let used = Array(history.drop { $0 == 0 })
        let days: Int
        if let end = status.window.end {
            days = max(1, calendar.dateComponents([.day], from: today, to: end).day ?? 1)
        } else {
            days = Self.lifetimeHorizon
        }
        let predicted = SpendForecast(history: used).next(days)
        let tomorrow = calendar.date(byAdding: .day, value: 1, to: today) ?? now
        let leftOfToday = max(0, min(1, tomorrow.timeIntervalSince(now) / tomorrow.timeIntervalSince(today)))
        var total = status.spentUSD
        var runsOut: Date?
        if total >= budget.limitUSD { runsOut = today }
        for (index, amount) in predicted.enumerated() {
            total += index == 0 ? amount * leftOfToday : amount
            if runsOut == nil, total >= budget.limitUSD, budget.limitUSD > 0 {
                runsOut = calendar.date(byAdding: .day, value: index, to: today)
            }
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = calendar.timeZone
        formatter.dateFormat = "yyyy-MM-dd"
        return Forecast(
            periodEndUSD: status.window.end == nil ? nil : (total * 1e6).rounded() / 1e6, runsOutOn: runsOut.map(formatter.string),
            method: used.count >= 2 * SpendForecast.season ? "holt-winters" : "seasonal-naive")
    }
}
