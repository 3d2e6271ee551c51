import Redis

/// Every limit of a request decided in one script call, on Redis's own clock so that every
/// replica agrees without a clock of its own: a request bucket (`rl:{key id}:rpm`,
/// `rl:tenant:{tenant}:rpm`, …) is a sorted set of the requests of the last period, scored by
/// when they came (a sliding window); a token bucket (`…:tpm`) holds its GCRA theoretical arrival
/// time in microseconds; an in-flight bucket (`…:conc`) is a sorted set of the requests holding a
/// place, scored by when the place lapses. All expire once they would be empty / full again.
struct RedisRateLimiter: RateLimiter {
    let redis: RedisClient

    /// KEYS: the buckets; ARGV: the request's id, then per bucket its kind (`r`, `t` or `c`),
    /// period (µs; for `c` how long a place is held at most), limit and cost. Every bucket takes its cost or none does. Returns {allowed, retry_us,
    /// then per bucket remaining and reset_us}.
    static let acquireScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local allowed = 1
        local wait = 0
        local seen = {}
        for i = 1, #KEYS do
            local kind = ARGV[4 * i - 2]
            local period = tonumber(ARGV[4 * i - 1])
            local limit = tonumber(ARGV[4 * i])
            local cost = tonumber(ARGV[4 * i + 1])
            if kind == 'r' then
                redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
                local count = redis.call('ZCARD', KEYS[i])
                seen[i] = count
                if count + 1 > limit then
                    allowed = 0
                    local leaving = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
                    local w = tonumber(leaving[2]) + period - now
                    if w > wait then wait = w end
                end
            elseif kind == 'c' then
                redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
                local count = redis.call('ZCARD', KEYS[i])
                seen[i] = count
                if count >= limit then
                    allowed = 0
                    if 1000000 > wait then wait = 1000000 end
                end
            else
                local interval = period / limit
                local tat = tonumber(redis.call('GET', KEYS[i]) or now)
                if tat < now then tat = now end
                seen[i] = tat
                local allow_at = tat + interval * (cost - limit)
                if now < allow_at and allow_at - now > wait then wait = allow_at - now end
                if now < allow_at then allowed = 0 end
            end
        end
        local reply = {allowed, math.ceil(wait)}
        for i = 1, #KEYS do
            local kind = ARGV[4 * i - 2]
            local period = tonumber(ARGV[4 * i - 1])
            local limit = tonumber(ARGV[4 * i])
            local cost = tonumber(ARGV[4 * i + 1])
            if kind == 'r' then
                local count = seen[i]
                local newest = now
                if allowed == 1 then
                    redis.call('ZADD', KEYS[i], now, ARGV[1])
                    redis.call('PEXPIRE', KEYS[i], math.ceil(period / 1000))
                    count = count + 1
                elseif count > 0 then
                    newest = tonumber(redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')[2])
                end
                reply[#reply + 1] = math.max(0, limit - count)
                reply[#reply + 1] = math.max(0, math.floor(newest + period - now))
            elseif kind == 'c' then
                local count = seen[i]
                if allowed == 1 then
                    redis.call('ZADD', KEYS[i], now + period, ARGV[1])
                    redis.call('PEXPIRE', KEYS[i], math.ceil(period / 1000))
                    count = count + 1
                end
                reply[#reply + 1] = math.max(0, limit - count)
                reply[#reply + 1] = 0
            else
                local interval = period / limit
                local tat = seen[i]
                if allowed == 1 then
                    tat = tat + interval * cost
                    if tat > now then
                        redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
                    end
                end
                local left = math.floor((now - tat) / interval) + limit
                reply[#reply + 1] = math.min(math.max(0, left), limit)
                reply[#reply + 1] = math.max(0, math.floor(tat - now))
            end
        end
        return reply
        """)

    /// KEYS: token buckets; ARGV: per bucket its interval (µs per token), then the delta in
    /// tokens. A bucket that a refund makes full again is deleted.
    static let settleScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local delta = tonumber(ARGV[#ARGV])
        for i = 1, #KEYS do
            local tat = tonumber(redis.call('GET', KEYS[i]) or now)
            if tat < now then tat = now end
            tat = tat + tonumber(ARGV[i]) * delta
            if tat > now then
                redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
            else
                redis.call('DEL', KEYS[i])
            end
        end
        return 1
        """)

    func acquire(_ buckets: [RateBucket], id: String) async throws -> RateVerdict {
        guard !buckets.isEmpty else { return RateVerdict(allowed: true, retryAfter: nil, decisions: []) }
        var arguments = [id]
        arguments.reserveCapacity(1 + buckets.count * 4)
        for bucket in buckets {
            let kind = switch bucket.kind {
            case .requests: "r"
            case .tokens: "t"
            case .inFlight: "c"
            }
            arguments += [kind, String(bucket.periodMicroseconds), String(bucket.limit), String(bucket.kind == .tokens ? bucket.clampedCost : 1)]
        }
        let reply = try await redis.run(Self.acquireScript, keys: buckets.map(\.key), arguments: arguments)
        let values = (reply.array ?? []).map { $0.int ?? 0 }
        guard values.count == 2 + 2 * buckets.count else { throw RedisError(.unexpectedReply) }
        let allowed = values[0] == 1
        let decisions = buckets.indices.map { index in
            let remaining = values[2 + 2 * index]
            let fits = allowed || (buckets[index].kind == .tokens ? remaining >= buckets[index].clampedCost : remaining > 0)
            return RateDecision(allowed: fits, limit: buckets[index].limit, remaining: remaining,
                                resetAfter: .microseconds(values[3 + 2 * index]))
        }
        return RateVerdict(allowed: allowed, retryAfter: allowed ? nil : .microseconds(values[1]), decisions: decisions)
    }

    static let releaseScript = RedisScript("""
        for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
        return 1
        """)

    func release(_ buckets: [RateBucket], id: String) async throws {
        let keys = buckets.filter { $0.kind == .inFlight }.map(\.key)
        guard !keys.isEmpty else { return }
        _ = try await redis.run(Self.releaseScript, keys: keys, arguments: [id])
    }

    func settle(_ buckets: [RateBucket], delta: Int) async throws {
        let buckets = buckets.filter { $0.kind == .tokens }
        guard !buckets.isEmpty, delta != 0 else { return }
        _ = try await redis.run(Self.settleScript, keys: buckets.map(\.key), arguments: buckets.map { String($0.interval) } + [String(delta)])
    }
}
