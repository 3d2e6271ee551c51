import Foundation

/// A spending limit over a period for the requests of a scope (`POST /v1/budgets`): every
/// budget that applies to a request must leave room for its maximum cost, or it is refused.
public struct Budget: Codable, Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var name: String?
    public var scope: BudgetScope
    /// Only requests for this public model name count (the model the caller asked for).
    public var model: String?
    public var period: BudgetPeriod
    /// The calendar the period follows (IANA name, e.g. `Europe/Paris`).
    public var timeZone: String
    public var limitUSD: Double
    /// Fractions of the limit whose crossing raises an alert, ascending.
    public var alertThresholds: [Double]
    public var webhookURL: String?
    public var createdAt: Date

    public static let defaultThresholds = [0.5, 0.8, 1.0]

    public init(id: String, tenant: String, name: String? = nil, scope: BudgetScope, model: String? = nil, period: BudgetPeriod,
                timeZone: String = "UTC", limitUSD: Double, alertThresholds: [Double] = Budget.defaultThresholds, webhookURL: String? = nil,
                createdAt: Date = Date()) {
        self.id = id
        self.tenant = tenant
        self.name = name
        self.scope = scope
        self.model = model
        self.period = period
        self.timeZone = timeZone
        self.limitUSD = limitUSD
        self.alertThresholds = alertThresholds
        self.webhookURL = webhookURL
        self.createdAt = createdAt
    }

    /// Whether a request of `attributes` counts against this budget.
    public func applies(to attributes: SpendAttributes) -> Bool {
        guard attributes.tenant == tenant else { return false }
        if let model, model != attributes.model { return false }
        return scope.matches(attributes)
    }

    /// How the budget is named to a person: its name and id.
    public var title: String {
        name.map { "'\($0)' (\(id))" } ?? id
    }

    enum CodingKeys: String, CodingKey {
        case id, tenant, name, scope, model, period
        case timeZone = "time_zone"
        case limitUSD = "limit_usd"
        case alertThresholds = "alert_thresholds"
        case webhookURL = "webhook_url"
        case createdAt = "created_at"
    }
}

/// The answer of the cost-service's `GET /internal/budgets`: a tenant's budgets, as the
/// orchestrator's budget stage reads them.
public struct BudgetDefinitions: Codable, Sendable, Equatable {
    public var data: [Budget]

    public init(data: [Budget]) {
        self.data = data
    }
}

/// Who a budget covers: the whole tenant, or the requests that match every field it sets (a
/// team, a user, one key, a tag). `{"tenant": true}` or e.g. `{"team": "ml", "user": "ada"}`.
public struct BudgetScope: Codable, Sendable, Hashable {
    public var team: String?
    public var user: String?
    public var keyID: String?
    public var tag: String?

    public init(team: String? = nil, user: String? = nil, keyID: String? = nil, tag: String? = nil) {
        self.team = team
        self.user = user
        self.keyID = keyID
        self.tag = tag
    }

    public static let tenant = BudgetScope()

    public var coversTenant: Bool { team == nil && user == nil && keyID == nil && tag == nil }

    public func matches(_ attributes: SpendAttributes) -> Bool {
        if let team, team != attributes.team { return false }
        if let user, user != attributes.user { return false }
        if let keyID, keyID != attributes.keyID { return false }
        if let tag, !attributes.tags.contains(tag) { return false }
        return true
    }

    enum CodingKeys: String, CodingKey {
        case tenant, team, user, tag
        case keyID = "key_id"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        team = try container.decodeIfPresent(String.self, forKey: .team)
        user = try container.decodeIfPresent(String.self, forKey: .user)
        keyID = try container.decodeIfPresent(String.self, forKey: .keyID)
        tag = try container.decodeIfPresent(String.self, forKey: .tag)
        let tenant = try container.decodeIfPresent(Bool.self, forKey: .tenant)
        if tenant == true, !coversTenant {
            throw DecodingError.dataCorruptedError(forKey: .tenant, in: container, debugDescription: "'tenant: true' is a scope of its own")
        }
        if tenant != true, coversTenant {
            throw DecodingError.dataCorruptedError(
                forKey: .tenant, in: container, debugDescription: "a scope is {\"tenant\": true} or names a team, user, key_id or tag")
        }
        for (value, key) in [(team, CodingKeys.team), (user, .user), (keyID, .keyID), (tag, .tag)] {
            if let value, value.isEmpty || value.utf8.count > 200 {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "1 to 200 bytes")
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if coversTenant { try container.encode(true, forKey: .tenant) }
        try container.encodeIfPresent(team, forKey: .team)
        try container.encodeIfPresent(user, forKey: .user)
        try container.encodeIfPresent(keyID, forKey: .keyID)
        try container.encodeIfPresent(tag, forKey: .tag)
    }
}

/// What a request is, as far as budgets care.
public struct SpendAttributes: Sendable, Hashable {
    public var tenant: String
    public var keyID: String?
    public var team: String?
    public var user: String?
    public var tags: [String]
    public var model: String

    public init(tenant: String, keyID: String?, team: String?, user: String?, tags: [String], model: String) {
        self.tenant = tenant
        self.keyID = keyID
        self.team = team
        self.user = user
        self.tags = tags
        self.model = model
    }
}

/// A budget's period: a calendar day, an ISO week (from Monday), a calendar month, each in the
/// budget's time zone, or its whole lifetime.
public enum BudgetPeriod: String, Codable, Sendable, CaseIterable {
    case day, week, month, total

    /// The period that holds `date` in `zone`.
    public func window(containing date: Date, in zone: TimeZone) -> BudgetWindow {
        guard self != .total else { return BudgetWindow(label: "total", start: nil, end: nil) }
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = zone
        calendar.firstWeekday = 2
        let component: Calendar.Component = switch self {
        case .day: .day
        case .week: .weekOfYear
        default: .month
        }
        guard let interval = calendar.dateInterval(of: component, for: date) else {
            return BudgetWindow(label: "total", start: nil, end: nil)
        }
        let parts = calendar.dateComponents([.year, .month, .day], from: interval.start)
        let year = parts.year ?? 0, month = parts.month ?? 0, day = parts.day ?? 0
        let label = switch self {
        case .day: String(format: "d%04d-%02d-%02d", year, month, day)
        case .week: String(format: "w%04d-%02d-%02d", year, month, day)
        default: String(format: "m%04d-%02d", year, month)
        }
        return BudgetWindow(label: label, start: interval.start, end: interval.end)
    }
}

/// One period of a budget: its counter's label (`d2026-12-01`, `w2026-11-30` — the Monday —,
/// `m2026-12`, `total`) and its bounds; nil bounds for a lifetime budget.
public struct BudgetWindow: Sendable, Hashable {
    public var label: String
    public var start: Date?
    /// When the budget resets.
    public var end: Date?

    public init(label: String, start: Date?, end: Date?) {
        self.label = label
        self.start = start
        self.end = end
    }
}
