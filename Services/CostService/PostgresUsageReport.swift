import Foundation
import Postgres

/// `GET /v1/usage` from `cost.usage_daily`, summed over the dimensions not grouped by, at most
/// `UsageQuery.maxRows` groups.
struct PostgresUsageReport: UsageReport {
    let postgres: PostgresClient

    func rows(_ query: UsageQuery) async throws -> [UsageRow] {
        // Column names come from the fixed dimension list, never from the caller.
        let columns = query.groupBy.map { dimension in
            switch dimension {
            case .model: "model"
            case .key: "key_id"
            case .day: "day::text"
            }
        }
        let grouped = columns.isEmpty ? "" : columns.joined(separator: ", ") + ", "
        let order = columns.isEmpty ? "" : "GROUP BY " + columns.joined(separator: ", ") + " ORDER BY " + columns.joined(separator: ", ")
        let rows = try await postgres.query("""
            SELECT \(grouped)sum(requests)::bigint, sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, sum(cached_tokens)::bigint,
                   sum(reasoning_tokens)::bigint, sum(estimated_requests)::bigint, sum(cost_usd)::text, sum(saved_usd)::text
            FROM cost.usage_daily WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date \(order) LIMIT $4
            """, query.tenant, query.from, query.to, UsageQuery.maxRows + 1)
        guard rows.count <= UsageQuery.maxRows else { throw UsageReportError.tooManyRows }
        return try rows.map { row in
            var result = UsageRow(requests: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0, estimatedRequests: 0, costUSD: 0, savedUSD: 0)
            for (index, dimension) in query.groupBy.enumerated() {
                let value = try row.decode(String.self, at: index)
                switch dimension {
                case .model: result.model = value
                case .key: result.keyID = value.isEmpty ? nil : value
                case .day: result.day = value
                }
            }
            let at = query.groupBy.count
            result.requests = Int(try row.decode(Int64.self, at: at))
            result.promptTokens = Int(try row.decode(Int64.self, at: at + 1))
            result.completionTokens = Int(try row.decode(Int64.self, at: at + 2))
            result.cachedTokens = Int(try row.decode(Int64.self, at: at + 3))
            result.reasoningTokens = Int(try row.decode(Int64.self, at: at + 4))
            result.estimatedRequests = Int(try row.decode(Int64.self, at: at + 5))
            result.costUSD = Double(try row.decode(String.self, at: at + 6)) ?? 0
            result.savedUSD = Double(try row.decode(String.self, at: at + 7)) ?? 0
            return result
        }
    }
}
