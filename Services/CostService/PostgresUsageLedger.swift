import ConduitProtocol
import Foundation
import Postgres

/// `cost.usage_ledger`, one row per event id, and `cost.usage_daily`, the totals per tenant,
/// key, model and UTC day. One statement inserts the row and adds it to its rollup only if the
/// row is new, so a replayed event changes neither and the rollups always sum to the ledger.
struct PostgresUsageLedger: UsageLedger {
    let postgres: PostgresClient

    func record(_ event: UsageEvent) async throws -> Bool {
        let rows = try await postgres.query("""
            WITH inserted AS (
                INSERT INTO cost.usage_ledger (
                    event_id, request_id, tenant_id, key_id, kind, model, served_model, deployment, provider,
                    prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, cache_hit,
                    latency_ms, ttft_ms, status, occurred_at, usage_estimated, saved_usd, team, user_id, tags)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
                        ARRAY(SELECT jsonb_array_elements_text($24::jsonb)))
                ON CONFLICT (event_id) DO NOTHING
                RETURNING tenant_id, coalesce(key_id, '') AS key_id, model, (occurred_at AT TIME ZONE 'UTC')::date AS day,
                          prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, saved_usd, usage_estimated
            )
            INSERT INTO cost.usage_daily AS daily (
                tenant_id, key_id, model, day, requests, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd,
                saved_usd, estimated_requests)
            SELECT tenant_id, key_id, model, day, 1, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd,
                   saved_usd, CASE WHEN usage_estimated THEN 1 ELSE 0 END FROM inserted
            ON CONFLICT (tenant_id, key_id, model, day) DO UPDATE SET
                requests = daily.requests + 1,
                prompt_tokens = daily.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = daily.completion_tokens + excluded.completion_tokens,
                cached_tokens = daily.cached_tokens + excluded.cached_tokens,
                reasoning_tokens = daily.reasoning_tokens + excluded.reasoning_tokens,
                cost_usd = daily.cost_usd + excluded.cost_usd,
                saved_usd = daily.saved_usd + excluded.saved_usd,
                estimated_requests = daily.estimated_requests + excluded.estimated_requests
            RETURNING 1
            """,
            event.eventID, event.requestID, event.tenant, event.keyID, event.kind, event.model, event.servedModel, event.deployment,
            event.provider, event.promptTokens, event.completionTokens, event.cachedTokens ?? 0, event.reasoningTokens ?? 0,
            event.costUSD ?? 0, event.cacheHit ?? false, event.latencyMilliseconds, event.timeToFirstTokenMilliseconds,
            event.status, event.timestamp, event.usageEstimated ?? false, event.savedUSD ?? 0, event.team, event.user,
            String(decoding: try JSONEncoder().encode(event.tags ?? []), as: UTF8.self))
        return rows.count == 1
    }
}
