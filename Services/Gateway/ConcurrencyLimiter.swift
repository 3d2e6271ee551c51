import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import Redis

/// Requests of one key in flight at once, counted where every replica sees them:
/// `RedisConcurrencyLimiter`; an application test counts in memory.
protocol ConcurrencyLimiter: Sendable {
    /// Takes a place in `slot` for request `id` unless `limit` are taken; a place not left within
    /// `ttl` (a replica that crashed) is free again. Returns whether it was taken, and how many are.
    func enter(_ slot: String, id: String, limit: Int, ttl: Duration) async throws -> (admitted: Bool, inFlight: Int)
    func leave(_ slot: String, id: String) async throws
}

/// A sorted set per key (`rl:{key id}:conc`) of the requests in flight, scored by when their
/// place expires, on Redis's clock: one script call to enter, one to leave.
struct RedisConcurrencyLimiter: ConcurrencyLimiter {
    let redis: RedisClient

    /// KEYS[1] the set; ARGV: request id, limit, ttl (ms). Returns {admitted, in flight}.
    static let enterScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local count = redis.call('ZCARD', KEYS[1])
        if count >= tonumber(ARGV[2]) then return {0, count} end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
        return {1, count + 1}
        """)

    func enter(_ slot: String, id: String, limit: Int, ttl: Duration) async throws -> (admitted: Bool, inFlight: Int) {
        let milliseconds = max(1, ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000)
        let reply = try await redis.run(Self.enterScript, keys: [slot], arguments: [id, String(max(1, limit)), String(milliseconds)])
        let values = (reply.array ?? []).map { $0.int ?? 0 }
        guard values.count == 2 else { throw RedisError(.unexpectedReply) }
        return (values[0] == 1, values[1])
    }

    func leave(_ slot: String, id: String) async throws {
        _ = try await redis.send(RedisCommand("ZREM", slot, id))
    }
}

/// Concurrent requests per API key (the key's `max_concurrent`, else
/// `CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY`; 0, the default, is no limit), shared by every
/// replica. A request over the limit gets 429 `rate_limit_error` (`concurrency_limit_exceeded`)
/// with `Retry-After: 1`; a request's place is given back when its response — a stream's last
/// byte included — has been written, or it failed. When the limiter cannot be reached the
/// request goes through and `gateway_concurrency_limit_unavailable_total` counts it.
struct ConcurrencyMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let limiter: any ConcurrencyLimiter
    let defaultLimit: Int
    /// How long a place is kept at most: longer than the longest chat exchange.
    let ttl: Duration
    let unavailable: Counter

    init(limiter: any ConcurrencyLimiter, defaultLimit: Int, ttl: Duration, registry: PrometheusCollectorRegistry) {
        self.limiter = limiter
        self.defaultLimit = defaultLimit
        self.ttl = ttl
        unavailable = registry.makeCounter(
            descriptor: .init(namespace: "gateway", metricName: "concurrency_limit_unavailable", unitName: "total",
                              helpText: "Requests let through without a concurrency limit because the limiter could not be reached."))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let identity = context.identity, case let limit = identity.maxConcurrent ?? defaultLimit, limit > 0 else {
            return try await next(request, context)
        }
        let slot = "rl:\(identity.keyID):conc"
        let id = context.requestID + ":" + UUID().uuidString
        do {
            let entry = try await limiter.enter(slot, id: id, limit: limit, ttl: ttl)
            guard entry.admitted else {
                var refusal = APIError(status: .tooManyRequests, type: .rateLimit,
                                       message: "Too many requests at once: this API key may have \(limit) in flight. Try again when one has finished.",
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
            await leave()
        }
        return response
    }
}
