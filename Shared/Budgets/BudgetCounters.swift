import ConduitProtocol
import Foundation
import Redis

/// The live spend of every budget period, in Redis: a hash `spend:{budget id}:{window label}`
/// with `spent` (settled), `reserved` (the sum of open reservations), one `r:{id}` field per
/// open reservation and `built` once the counter was built from the ledger; beside it a sorted
/// set `spend:{budget id}:{window label}:open` of reservation ids by expiry. Amounts are whole
/// nanodollars (Lua's numbers are doubles: exact up to $9,007,199). Both keys expire a week
/// after the period ends (on Redis's clock; a period already that old is not given one).
///
/// Each operation is one script call, atomic across every budget it names: a reservation is
/// made against all of them or none. The ledger in Postgres is the durable copy: a counter
/// that is missing (a flushed Redis, a new period) reports itself unbuilt, and the
/// cost-service builds it from the ledger before anyone may reserve against it.
public struct BudgetCounters: Sendable {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    /// One budget in one of its periods.
    public struct Counter: Sendable, Hashable {
        public var budgetID: String
        public var window: BudgetWindow

        public init(budgetID: String, window: BudgetWindow) {
            self.budgetID = budgetID
            self.window = window
        }

        public var key: String { "spend:\(budgetID):\(window.label)" }
        var openKey: String { key + ":open" }

        /// When Redis may forget the counter (0: never).
        var expiresAtMilliseconds: Int64 {
            guard let end = window.end else { return 0 }
            return Int64((end.timeIntervalSince1970 + 7 * 86_400) * 1000)
        }
    }

    public enum Reservation: Sendable, Equatable {
        case held
        /// The counter at `index` has no room: what it had spent and reserved, in USD.
        case refused(index: Int, spentUSD: Double, reservedUSD: Double)
        /// These counters (indexes) have not been built from the ledger yet.
        case unbuilt([Int])
    }

    public struct State: Sendable, Equatable {
        public var spentUSD: Double
        public var reservedUSD: Double
        public var built: Bool

        public init(spentUSD: Double, reservedUSD: Double, built: Bool) {
            self.spentUSD = spentUSD
            self.reservedUSD = reservedUSD
            self.built = built
        }
    }

    /// Holds `amountUSD` against every `limit` of `counters` for `ttl`, unless one of them would
    /// go over its limit with it. Expired reservations are dropped first.
    public func reserve(_ id: String, amountUSD: Double, against counters: [(counter: Counter, limitUSD: Double)], ttl: Duration) async throws -> Reservation {
        guard !counters.isEmpty else { return .held }
        var keys: [String] = []
        var arguments: [any RedisArgument] = [id, String(max(1, ttl.components.seconds) * 1000), String(Nanodollars.up(amountUSD))]
        for (counter, limit) in counters {
            keys += [counter.key, counter.openKey]
            arguments += [String(counter.expiresAtMilliseconds), String(Nanodollars.down(limit))]
        }
        let reply = try await redis.run(Self.reserveScript, keys: keys, arguments: arguments)
        let values = (reply.array ?? []).map { $0.int ?? Int.min }
        switch values.first {
        case 1: return .held
        case 0 where values.count == 4:
            return .refused(index: values[1] - 1, spentUSD: Nanodollars.usd(values[2]), reservedUSD: Nanodollars.usd(values[3]))
        case -1: return .unbuilt(values.dropFirst().map { $0 - 1 })
        default: throw RedisError(.unexpectedReply)
        }
    }

    /// Ends reservation `id`: its amount is no longer held, and `costUSD` (what the request
    /// really cost; 0 when it failed before costing anything) is added to what was spent.
    public func settle(_ id: String, costUSD: Double, on counters: [Counter]) async throws {
        guard !counters.isEmpty else { return }
        _ = try await redis.run(
            Self.settleScript, keys: counters.flatMap { [$0.key, $0.openKey] }, arguments: [id, String(Nanodollars.rounded(max(0, costUSD)))])
    }

    /// Builds `counter` from the ledger, or raises it to the ledger when it had spent less (a
    /// settlement lost with a crashed orchestrator). Never lowers it: the ledger trails the
    /// counters by the events still on their way. Returns the counter's spend before (nil
    /// when it was not built) and after.
    @discardableResult
    public func build(_ counter: Counter, ledgerSpentUSD: Double) async throws -> (before: Double?, after: Double) {
        let reply = try await redis.run(
            Self.buildScript, keys: [counter.key],
            arguments: [String(Nanodollars.rounded(ledgerSpentUSD)), String(counter.expiresAtMilliseconds)])
        let values = (reply.array ?? []).map { $0.int }
        guard values.count == 2, let after = values[1] else { throw RedisError(.unexpectedReply) }
        return (values[0].map(Nanodollars.usd), Nanodollars.usd(after))
    }

    /// The counter now, expired reservations dropped; nil when it does not exist.
    public func state(of counter: Counter) async throws -> State? {
        let reply = try await redis.run(Self.stateScript, keys: [counter.key, counter.openKey])
        let values = (reply.array ?? []).map { $0.int }
        guard values.count == 3 else { return nil }
        return State(spentUSD: Nanodollars.usd(values[0] ?? 0), reservedUSD: Nanodollars.usd(values[1] ?? 0), built: values[2] == 1)
    }

    /// Drops the reservations of counter `c` (and its set `o`) that expired before `now`, at
    /// most 256 a call so that one call stays short.
    static let sweep = """
        local function sweep(c, o, now)
            local expired = redis.call('ZRANGEBYSCORE', o, '-inf', now, 'LIMIT', 0, 256)
            for _, r in ipairs(expired) do
                local held = redis.call('HGET', c, 'r:' .. r)
                if held then
                    redis.call('HDEL', c, 'r:' .. r)
                    redis.call('HINCRBY', c, 'reserved', '-' .. held)
                end
                redis.call('ZREM', o, r)
            end
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        """

    /// KEYS: counter, open set, per budget. ARGV: id, ttl ms, amount, then expire-at ms and
    /// limit per budget. Returns {1}, {0, index, spent, reserved} or {-1, unbuilt indexes…}.
    static let reserveScript = RedisScript(sweep + """
        local n = #KEYS / 2
        local unbuilt = {-1}
        for i = 1, n do
            if redis.call('HEXISTS', KEYS[2 * i - 1], 'built') == 0 then unbuilt[#unbuilt + 1] = i end
        end
        if #unbuilt > 1 then return unbuilt end
        local amount = tonumber(ARGV[3])
        for i = 1, n do
            local c = KEYS[2 * i - 1]
            sweep(c, KEYS[2 * i], now)
            local spent = tonumber(redis.call('HGET', c, 'spent') or '0')
            local reserved = tonumber(redis.call('HGET', c, 'reserved') or '0')
            if spent + reserved + amount > tonumber(ARGV[3 + 2 * i]) then return {0, i, spent, reserved} end
        end
        for i = 1, n do
            local c, o = KEYS[2 * i - 1], KEYS[2 * i]
            redis.call('HSET', c, 'r:' .. ARGV[1], ARGV[3])
            redis.call('HINCRBY', c, 'reserved', ARGV[3])
            redis.call('ZADD', o, now + tonumber(ARGV[2]), ARGV[1])
            local at = tonumber(ARGV[2 + 2 * i])
            if at > now then
                redis.call('PEXPIREAT', c, at)
                redis.call('PEXPIREAT', o, at)
            end
        end
        return {1}
        """)

    /// KEYS: counter, open set, per budget. ARGV: id, cost. A counter that is not built (Redis
    /// lost it) takes no cost: its build from the ledger will count it.
    static let settleScript = RedisScript("""
        for i = 1, #KEYS / 2 do
            local c, o = KEYS[2 * i - 1], KEYS[2 * i]
            local held = redis.call('HGET', c, 'r:' .. ARGV[1])
            if held then
                redis.call('HDEL', c, 'r:' .. ARGV[1])
                redis.call('HINCRBY', c, 'reserved', '-' .. held)
            end
            redis.call('ZREM', o, ARGV[1])
            if ARGV[2] ~= '0' and redis.call('HEXISTS', c, 'built') == 1 then
                redis.call('HINCRBY', c, 'spent', ARGV[2])
            end
        end
        return 1
        """)

    /// KEYS: counter. ARGV: the ledger's spend, expire-at ms. Returns {spent before or nil, after}.
    static let buildScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local built = redis.call('HEXISTS', KEYS[1], 'built') == 1
        local before = redis.call('HGET', KEYS[1], 'spent')
        if (not built) or (not before) or tonumber(before) < tonumber(ARGV[1]) then
            redis.call('HSET', KEYS[1], 'spent', ARGV[1])
        end
        redis.call('HSET', KEYS[1], 'built', '1')
        local at = tonumber(ARGV[2])
        if at > now then redis.call('PEXPIREAT', KEYS[1], at) end
        local after = tonumber(redis.call('HGET', KEYS[1], 'spent'))
        if built and before then return {tonumber(before), after} end
        return {false, after}
        """)

    /// KEYS: counter, open set. Returns {spent, reserved, built} or {} when there is no counter.
    static let stateScript = RedisScript(sweep + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
        sweep(KEYS[1], KEYS[2], now)
        local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
        local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
        return {spent, reserved, redis.call('HEXISTS', KEYS[1], 'built')}
        """)
}
