import ConduitProtocol
import Foundation

/// A budget as `/v1/budgets` shows it: its definition and its current period's spend; one
/// budget read alone also carries its forecast.
struct BudgetView: Encodable {
    let budget: Budget
    let status: BudgetAccounts.Status
    var forecast: BudgetForecaster.Forecast?

    enum CodingKeys: String, CodingKey {
        case id, object, name, scope, model, period
        case timeZone = "time_zone"
        case limitUSD = "limit_usd"
        case alertThresholds = "alert_thresholds"
        case webhookURL = "webhook_url"
        case createdAt = "created_at"
        case spentUSD = "spent_usd"
        case reservedUSD = "reserved_usd"
        case remainingUSD = "remaining_usd"
        case periodStart = "period_start"
        case resetsAt = "resets_at"
        case forecast
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(budget.id, forKey: .id)
        try container.encode("budget", forKey: .object)
        try container.encode(budget.name, forKey: .name)
        try container.encode(budget.scope, forKey: .scope)
        try container.encode(budget.model, forKey: .model)
        try container.encode(budget.period, forKey: .period)
        try container.encode(budget.timeZone, forKey: .timeZone)
        try container.encode(budget.limitUSD, forKey: .limitUSD)
        try container.encode(budget.alertThresholds, forKey: .alertThresholds)
        try container.encode(budget.webhookURL, forKey: .webhookURL)
        try container.encode(Self.iso(budget.createdAt), forKey: .createdAt)
        try container.encode(Self.amount(status.spentUSD), forKey: .spentUSD)
        try container.encode(Self.amount(status.reservedUSD), forKey: .reservedUSD)
        try container.encode(Self.amount(max(0, budget.limitUSD - status.spentUSD - status.reservedUSD)), forKey: .remainingUSD)
        try container.encode(status.window.start.map(Self.iso), forKey: .periodStart)
        try container.encode(status.window.end.map(Self.iso), forKey: .resetsAt)
        try container.encodeIfPresent(forecast, forKey: .forecast)
    }

    /// Nanodollar precision, as the counters keep it.
    static func amount(_ usd: Double) -> Double { (usd * 1e9).rounded() / 1e9 }

    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }
}
