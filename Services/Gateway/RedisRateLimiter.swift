import Redis

/// The generic cell rate algorithm over one Redis key per bucket (`rl:{key id}:rpm`): the key
/// holds the theoretical arrival time in milliseconds on Redis's own clock, so every replica
/// agrees without a clock of its own, and one script call decides and records.
struct RedisRateLimiter: RateLimiter {
    let redis: RedisClient

    /// KEYS[1] the bucket; ARGV: emission interval (ms per unit), burst (units), cost.
    /// Returns {allowed, remaining, reset_ms, retry_ms}.
    static let script = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local interval = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local cost = tonumber(ARGV[3])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local new_tat = tat + interval * cost
        local allow_at = new_tat - interval * burst
        if now < allow_at then
            return {0, 0, tat - now, allow_at - now}
        end
        redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
        return {1, math.max(0, math.floor((now - allow_at) / interval)), new_tat - now, 0}
        """)

    func acquire(_ bucket: String, limit: Int, period: Duration, cost: Int) async throws -> RateDecision {
        let limit = max(1, limit)
        let interval = max(1, Int(period.components.seconds * 1000 + period.components.attoseconds / 1_000_000_000_000_000) / limit)
        let reply = try await redis.run(Self.script, keys: [bucket], arguments: [String(interval), String(limit), String(max(1, cost))])
        let values = (reply.array ?? []).map { $0.int ?? 0 }
        guard values.count == 4 else { throw RedisError(.unexpectedReply) }
        return RateDecision(allowed: values[0] == 1, limit: limit, remaining: values[1], resetAfter: .milliseconds(values[2]),
                            retryAfter: values[0] == 1 ? nil : .milliseconds(values[3]))
    }
}
