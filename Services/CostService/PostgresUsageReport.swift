import Foundation
import Postgres

/// `GET /v1/usage` from `cost.usage_daily`, summed over the dimensions not grouped by, at most
/// `UsageQuery.maxRows` groups. Grouped by user, team or tag, which the rollups do not hold, it
/// sums the ledger's rows of the range instead; by tag, a request counts once under each of its
/// tags (and under no tag when it has none).
struct PostgresUsageReport: UsageReport {
    let postgres: PostgresClient

    func rows(_ query: UsageQuery) async throws -> [UsageRow] {
        // Column names come from the fixed dimension list, never from the caller.
        let fromRollups = query.groupBy.allSatisfy(\.inRollups)
        let columns = query.groupBy.map { dimension in
            switch dimension {
            case .model: "model"
            case .key: fromRollups ? "key_id" : "coalesce(key_id, '')"
            case .day: fromRollups ? "day::text" : "((occurred_at AT TIME ZONE 'UTC')::date)::text"
            case .user: "coalesce(user_id, '')"
            case .team: "coalesce(team, '')"
            case .tag: "tag"
            }
        }
        let grouped = columns.isEmpty ? "" : columns.joined(separator: ", ") + ", "
        let order = columns.isEmpty ? "" : "GROUP BY " + columns.joined(separator: ", ") + " ORDER BY " + columns.joined(separator: ", ")
        let sql = fromRollups ? """
            SELECT \(grouped)sum(requests)::bigint, sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, sum(cached_tokens)::bigint,
                   sum(reasoning_tokens)::bigint, sum(estimated_requests)::bigint, sum(cost_usd)::text, sum(saved_usd)::text
            FROM cost.usage_daily WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date \(order) LIMIT $4
            """ : """
            SELECT \(grouped)count(*)::bigint, sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, sum(cached_tokens)::bigint,
                   sum(reasoning_tokens)::bigint, count(*) FILTER (WHERE usage_estimated)::bigint, sum(cost_usd)::text, sum(saved_usd)::text
            FROM cost.usage_ledger \(query.groupBy.contains(.tag) ? "CROSS JOIN LATERAL unnest(CASE WHEN cardinality(tags) = 0 THEN ARRAY[''] ELSE tags END) AS tag" : "")
            WHERE tenant_id = $1 AND occurred_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
              AND occurred_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC' \(order) LIMIT $4
            """
        let rows = try await postgres.query(sql, query.tenant, query.from, query.to, UsageQuery.maxRows + 1)
        guard rows.count <= UsageQuery.maxRows else { throw UsageReportError.tooManyRows }
        return try rows.map { row in
            var result = UsageRow(requests: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0, estimatedRequests: 0, costUSD: 0, savedUSD: 0)
            for (index, dimension) in query.groupBy.enumerated() {
                let value = try row.decode(String.self, at: index)
                switch dimension {
                case .model: result.model = value
                case .key: result.keyID = value.isEmpty ? nil : value
                case .day: result.day = value
                case .user: result.user = value.isEmpty ? nil : value
                case .team: result.team = value.isEmpty ? nil : value
                case .tag: result.tag = value.isEmpty ? nil : value
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
