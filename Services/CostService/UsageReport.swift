import ConduitKit
import Foundation

/// What `GET /v1/usage` asks: the caller's tenant, a range of UTC days and the dimensions to
/// group by.
struct UsageQuery: Sendable, Equatable {
    enum Dimension: String, Sendable, CaseIterable {
        case model
        case key
        case day
        case user
        case team
        case tag

        /// Whether the daily rollups hold it; the others are summed from the ledger's rows.
        var inRollups: Bool { [.model, .key, .day].contains(self) }
    }

    var tenant: String
    /// First and last UTC day, both included, as `YYYY-MM-DD`.
    var from: String
    var to: String
    var groupBy: [Dimension]

    /// The longest range one query covers.
    static let maxDays = 366
    /// The most groups one answer holds; a query past it is asked to narrow its range or grouping.
    static let maxRows = 50_000

    /// Reads `from`, `to` (default: the last 30 days to today) and `group_by` (default `day`).
    init(tenant: String, parameters: [String: String], today: Date = Date()) throws {
        self.tenant = tenant
        let formatter = Self.dayFormatter()
        let to = try parameters["to"].map { try Self.day($0, param: "to", formatter) } ?? formatter.string(from: today)
        let toDate = formatter.date(from: to)!
        let from = try parameters["from"].map { try Self.day($0, param: "from", formatter) } ?? formatter.string(from: toDate.addingTimeInterval(-29 * 86_400))
        let fromDate = formatter.date(from: from)!
        guard fromDate <= toDate else { throw APIError.invalidRequest("'from' must not be after 'to'.", param: "from") }
        guard toDate.timeIntervalSince(fromDate) < Double(Self.maxDays) * 86_400 else {
            throw APIError.invalidRequest("A query covers at most \(Self.maxDays) days.", param: "from")
        }
        self.from = from
        self.to = to
        let names = (parameters["group_by"] ?? "day").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var dimensions: [Dimension] = []
        for name in names {
            guard let dimension = Dimension(rawValue: name) else {
                let known = Dimension.allCases.map(\.rawValue).joined(separator: ", ")
                throw APIError.invalidRequest("'group_by' takes \(known) (comma-separated); unknown dimension '\(name)'.", param: "group_by")
            }
            if !dimensions.contains(dimension) { dimensions.append(dimension) }
        }
        guard !dimensions.isEmpty else { throw APIError.invalidRequest("'group_by' names no dimension.", param: "group_by") }
        groupBy = dimensions
    }

    private static func day(_ text: String, param: String, _ formatter: DateFormatter) throws -> String {
        guard text.count == 10, let date = formatter.date(from: text) else {
            throw APIError.invalidRequest("'\(param)' must be a UTC day, YYYY-MM-DD.", param: param)
        }
        return formatter.string(from: date)
    }

    static func dayFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter
    }
}

/// One group of `GET /v1/usage`: the dimensions it was grouped by, then its totals.
struct UsageRow: Sendable, Equatable, Encodable {
    var model: String?
    var keyID: String?
    var day: String?
    var user: String?
    var team: String?
    var tag: String?
    var requests: Int
    var promptTokens: Int
    var completionTokens: Int
    var cachedTokens: Int
    var reasoningTokens: Int
    var estimatedRequests: Int
    var costUSD: Double
    var savedUSD: Double

    enum CodingKeys: String, CodingKey {
        case model, day, requests, user, team, tag
        case keyID = "key_id"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case cachedTokens = "cached_tokens"
        case reasoningTokens = "reasoning_tokens"
        case estimatedRequests = "estimated_requests"
        case costUSD = "cost_usd"
        case savedUSD = "saved_usd"
    }

    /// The CSV columns: the grouped dimensions, then every total.
    static func csvHeader(_ dimensions: [UsageQuery.Dimension]) -> String {
        (dimensions.map { $0 == .key ? "key_id" : $0.rawValue }
            + ["requests", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "estimated_requests", "cost_usd", "saved_usd"])
            .joined(separator: ",")
    }

    func csvLine(_ dimensions: [UsageQuery.Dimension]) -> String {
        let grouped = dimensions.map { dimension -> String in
            switch dimension {
            case .model: Self.csvField(model ?? "")
            case .key: Self.csvField(keyID ?? "")
            case .day: day ?? ""
            case .user: Self.csvField(user ?? "")
            case .team: Self.csvField(team ?? "")
            case .tag: Self.csvField(tag ?? "")
            }
        }
        let totals = [String(requests), String(promptTokens), String(completionTokens), String(cachedTokens), String(reasoningTokens),
                      String(estimatedRequests), String(format: "%.10f", costUSD), String(format: "%.10f", savedUSD)]
        return (grouped + totals).joined(separator: ",")
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled; one
    /// starting with `=`, `+`, `-` or `@` gets a leading quote so a spreadsheet does not run it.
    static func csvField(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@".contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Reads the daily rollups (the ledger's rows when grouped by user, team or tag): `PostgresUsageReport`.
protocol UsageReport: Sendable {
    /// Throws `UsageReportError.tooManyRows` past `UsageQuery.maxRows` groups.
    func rows(_ query: UsageQuery) async throws -> [UsageRow]
}

enum UsageReportError: Error {
    case tooManyRows
}
