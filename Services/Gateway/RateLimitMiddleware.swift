import ConduitKit
import ConduitProtocol
import HTTPTypes
import Hummingbird
import Logging
import Prometheus

/// Requests per minute per API key (the key's `rpm_limit`, else `CONDUIT_GATEWAY_RPM_PER_KEY`; 0,
/// the default, is no limit),
/// counted by the `RateLimiter` every replica shares. Every answer carries OpenAI's
/// `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests` and
/// `x-ratelimit-reset-requests`; past the limit the answer is 429 `rate_limit_error` with
/// `Retry-After`. When the limiter cannot be reached the request goes through (an outage of
/// Redis must not stop inference) and `gateway_rate_limit_unavailable_total` counts it.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let limiter: any RateLimiter
    let requestsPerMinute: Int
    let unavailable: Counter

    init(limiter: any RateLimiter, requestsPerMinute: Int, registry: PrometheusCollectorRegistry) {
        self.limiter = limiter
        self.requestsPerMinute = requestsPerMinute
        unavailable = registry.makeCounter(
            descriptor: .init(namespace: "gateway", metricName: "rate_limit_unavailable", unitName: "total",
                              helpText: "Requests let through unlimited because the rate limiter could not be reached."))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let identity = context.identity, case let limit = identity.requestsPerMinute ?? requestsPerMinute, limit > 0 else {
            return try await next(request, context)
        }
        let decision: RateDecision
        do {
            decision = try await limiter.acquire("rl:\(identity.keyID):rpm", limit: limit, period: .seconds(60), cost: 1)
        } catch {
            unavailable.increment()
            context.logger.warning("rate limiter unreachable; request not limited", metadata: [LogKey.error: "\(error)"])
            return try await next(request, context)
        }
        guard decision.allowed else {
            var refusal = APIError(status: .tooManyRequests, type: .rateLimit,
                                   message: "Rate limit reached: \(decision.limit) requests per minute for this API key. Try again in \(Self.spoken(decision.retryAfter ?? .seconds(1))).",
                                   code: "rate_limit_exceeded")
            refusal.retryAfterSeconds = Self.wholeSeconds(decision.retryAfter ?? .seconds(1))
            var response = ErrorEnvelopeMiddleware.response(refusal)
            Self.setHeaders(&response.headers, decision)
            return response
        }
        var response = try await next(request, context)
        Self.setHeaders(&response.headers, decision)
        return response
    }

    static func setHeaders(_ headers: inout HTTPFields, _ decision: RateDecision) {
        headers[HTTPField.Name("x-ratelimit-limit-requests")!] = String(decision.limit)
        headers[HTTPField.Name("x-ratelimit-remaining-requests")!] = String(decision.remaining)
        headers[HTTPField.Name("x-ratelimit-reset-requests")!] = spoken(decision.resetAfter)
    }

    /// OpenAI's duration format: `6s`, `120ms`.
    static func spoken(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds < 1000 ? "\(milliseconds)ms" : "\((milliseconds + 999) / 1000)s"
    }

    static func wholeSeconds(_ duration: Duration) -> Int {
        max(1, Int(duration.components.seconds) + (duration.components.attoseconds > 0 ? 1 : 0))
    }
}
