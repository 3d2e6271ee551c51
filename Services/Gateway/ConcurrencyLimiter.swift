import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import Redis

/// Requests in flight at once per key and per tenant, counted where every replica sees them:
/// `RedisConcurrencyLimiter`; an application test counts in memory.
protocol ConcurrencyLimiter: Sendable {
    /// Takes a place in every slot for request `id` unless one of them has its `limit` taken
    /// (then none); a place not left within `ttl` (a replica that crashed) is free again.
    /// Returns whether they were taken, and how many each slot has.
    func enter(_ slots: [(key: String, limit: Int)], id: String, ttl: Duration) async throws -> (admitted: Bool, inFlight: [Int])
    func leave(_ slots: [String], id: String) async throws
}

extension ConcurrencyLimiter {
    func enter(_ slot: String, id: String, limit: Int, ttl: Duration) async throws -> (admitted: Bool, inFlight: Int) {
        let (admitted, counts) = try await enter([(slot, limit)], id: id, ttl: ttl)
        return (admitted, counts.first ?? 0)
    }

    func leave(_ slot: String, id: String) async throws { try await leave([slot], id: id) }
}

/// A sorted set per slot (`rl:{key id}:conc`, `rl:tenant:{tenant}:conc`) of the requests in
/// flight, scored by when their place expires, on Redis's clock: one script call to enter, one
/// to leave.
struct RedisConcurrencyLimiter: ConcurrencyLimiter {
    let redis: RedisClient

    /// KEYS: the slots; ARGV: request id, ttl (ms), then each slot's limit. Returns {admitted,
    /// then each slot's count}.
    static let enterScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ttl = tonumber(ARGV[2])
        local admitted = 1
        local reply = {1}
        for i = 1, #KEYS do
            redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
            local count = redis.call('ZCARD', KEYS[i])
            if count >= tonumber(ARGV[2 + i]) then admitted = 0 end
            reply[i + 1] = count
        end
        reply[1] = admitted
        if admitted == 1 then
            for i = 1, #KEYS do
                redis.call('ZADD', KEYS[i], now + ttl, ARGV[1])
                redis.call('PEXPIRE', KEYS[i], ttl)
                reply[i + 1] = reply[i + 1] + 1
            end
        end
        return reply
        """)

    static let leaveScript = RedisScript("""
        for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
        return 1
        """)

    func enter(_ slots: [(key: String, limit: Int)], id: String, ttl: Duration) async throws -> (admitted: Bool, inFlight: [Int]) {
        let milliseconds = max(1, ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000)
        let reply = try await redis.run(
            Self.enterScript, keys: slots.map(\.key), arguments: [id, String(milliseconds)] + slots.map { String(max(1, $0.limit)) })
        let values = (reply.array ?? []).map { $0.int ?? 0 }
        guard values.count == 1 + slots.count else { throw RedisError(.unexpectedReply) }
        return (values[0] == 1, Array(values.dropFirst()))
    }

    func leave(_ slots: [String], id: String) async throws {
        _ = try await redis.run(Self.leaveScript, keys: slots, arguments: [id])
    }
}

/// Concurrent requests per API key and per tenant (the key's and the tenant's `max_concurrent`,
/// else `CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY` / `_PER_TENANT`; 0, the default, is no limit),
/// shared by every replica. A request over the limit gets 429 `rate_limit_error` (`concurrency_limit_exceeded`)
/// with `Retry-After: 1`; a request's place is given back when its response — a stream's last
/// byte included — has been written, or it failed. When the limiter cannot be reached the
/// request goes through and `gateway_concurrency_limit_unavailable_total` counts it.
struct ConcurrencyMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let limiter: any ConcurrencyLimiter
    let defaultLimit: Int
    var tenantDefault = 0
    /// How long a place is kept at most: longer than the longest chat exchange.
    let ttl: Duration
    let unavailable: Counter

    init(limiter: any ConcurrencyLimiter, defaultLimit: Int, tenantDefault: Int = 0, ttl: Duration, registry: PrometheusCollectorRegistry) {
        self.limiter = limiter
        self.defaultLimit = defaultLimit
        self.tenantDefault = tenantDefault
        self.ttl = ttl
        unavailable = registry.makeCounter(
            descriptor: .init(namespace: "gateway", metricName: "concurrency_limit_unavailable", unitName: "total",
                              helpText: "Requests let through without a concurrency limit because the limiter could not be reached."))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let identity = context.identity else { return try await next(request, context) }
        var slots: [(key: String, limit: Int)] = []
        if case let limit = identity.limits.key.maxConcurrent ?? defaultLimit, limit > 0 { slots.append(("rl:\(identity.keyID):conc", limit)) }
        if case let limit = identity.limits.tenant.maxConcurrent ?? tenantDefault, limit > 0 {
            slots.append(("rl:tenant:\(identity.tenant):conc", limit))
        }
        guard !slots.isEmpty else { return try await next(request, context) }
        let id = context.requestID + ":" + UUID().uuidString
        do {
            let entry = try await limiter.enter(slots, id: id, ttl: ttl)
            guard entry.admitted else {
                let full = zip(slots, entry.inFlight).first { $0.1 >= $0.0.limit }?.0 ?? slots[0]
                let owner = full.key.hasPrefix("rl:tenant:") ? "this tenant" : "this API key"
                var refusal = APIError(status: .tooManyRequests, type: .rateLimit,
                                       message: "Too many requests at once: \(owner) may have \(full.limit) in flight. Try again when one has finished.",
                                       code: "concurrency_limit_exceeded")
                refusal.retryAfterSeconds = 1
                throw refusal
            }
        } catch let error as APIError {
            throw error
        } catch {
            unavailable.increment()
            context.logger.warning("concurrency limiter unreachable; request not limited", metadata: [LogKey.error: "\(error)"])
            return try await next(request, context)
        }
        let slot = slots.map(\.key)
        let limiter = self.limiter
        let logger = context.logger
        @Sendable func leave() async {
            do { try await limiter.leave(slot, id: id) } catch {
                logger.warning("a concurrency place could not be given back (it expires)", metadata: [LogKey.error: "\(error)"])
            }
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            await leave()
            throw error
        }
        let body = response.body
        response.body = ResponseBody { writer in
            do {
                try await body.write(writer)
            } catch {
                await leave()
                throw error
            }
            // The answer is out: the place is given back off the connection's path (the next
            // request on it does not wait for Redis). Bounded by the Redis client's queue; a
            // place it refuses expires with its TTL.
            Task { await leave() }
        }
        return response
    }
}
