import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import Synchronization

/// Requests per minute, tokens per minute and requests in flight, per key, per tenant and per
/// model, and the models a key may use. Every limit a request is under is decided in one call to
/// the shared limiter (one Redis script): the key's and its tenant's requests and places in
/// flight (every route counts), and on the chat and embeddings routes their tokens and the
/// limits of the model asked for. Limits come from the key
/// and the tenant (`/v1/keys`, `/v1/tenants`), else the defaults below.
///
/// Tokens are reserved before the request goes on — the prompt estimated from the body (a
/// token per 4 bytes) plus `max_completion_tokens` / `max_tokens` (else
/// `CONDUIT_GATEWAY_TPM_COMPLETION_ESTIMATE`) — and settled to the real count when the answer
/// says it (`X-Conduit-Usage-Tokens`, or a stream's `: conduit-usage-tokens` comment); a cached
/// answer costs none.
///
/// Every answer carries OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (of the
/// tightest limit of each kind); past a limit the answer is 429 `rate_limit_error` with
/// `Retry-After`. A model the key may not use is 403 `model_not_allowed`.
///
/// When Redis cannot be reached, each replica limits alone, in memory, to its share of every
/// limit (the limit divided by `CONDUIT_GATEWAY_RATE_LIMIT_FALLBACK_REPLICAS`), for a second
/// before it tries Redis again; `gateway_rate_limit_fallback_total` counts those requests and
/// `gateway_rate_limit_degraded` is 1 meanwhile.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_GATEWAY_RPM_PER_KEY`, `_TPM_PER_KEY` | 0 (no limit) |
/// | `CONDUIT_GATEWAY_RPM_PER_TENANT`, `_TPM_PER_TENANT` | 0 (no limit) |
/// | `CONDUIT_GATEWAY_MODEL_LIMITS` | none; JSON `{"model": {"rpm_limit", "tpm_limit"}}`, per tenant, for tenants without their own |
/// | `CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY`, `_PER_TENANT` | 0 (no limit) |
/// | `CONDUIT_GATEWAY_TPM_COMPLETION_ESTIMATE` | 256 (completion tokens reserved when a request names no maximum) |
/// | `CONDUIT_GATEWAY_RATE_LIMIT_FALLBACK_REPLICAS` | 1 (replicas sharing the limits while Redis is down) |
/// | `CONDUIT_GATEWAY_RATE_LIMIT_LOCAL_BUCKETS` | 100000 (buckets the fallback holds) |
/// | `CONDUIT_GATEWAY_RATE_LIMIT_SETTLES` | 10000 (token settlements in flight; past it they are skipped and counted) |
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext

    struct Policy: Sendable {
        var keyRPM = 0
        var keyTPM = 0
        var tenantRPM = 0
        var tenantTPM = 0
        /// Per tenant, for tenants without limits of their own for the model.
        var modelLimits: [String: RateLimits] = [:]
        var completionEstimate = 256
        var fallbackReplicas = 1
        var keyConcurrent = 0
        var tenantConcurrent = 0
        /// How long a place in flight is held at most: longer than the longest chat exchange.
        var placeLifetime: Duration = .seconds(960)

        init() {}

        init(_ environment: ConduitEnvironment) throws {
            keyRPM = try environment.int("CONDUIT_GATEWAY_RPM_PER_KEY", default: 0)
            keyTPM = try environment.int("CONDUIT_GATEWAY_TPM_PER_KEY", default: 0)
            tenantRPM = try environment.int("CONDUIT_GATEWAY_RPM_PER_TENANT", default: 0)
            tenantTPM = try environment.int("CONDUIT_GATEWAY_TPM_PER_TENANT", default: 0)
            completionEstimate = try environment.int("CONDUIT_GATEWAY_TPM_COMPLETION_ESTIMATE", default: 256)
            fallbackReplicas = max(1, try environment.int("CONDUIT_GATEWAY_RATE_LIMIT_FALLBACK_REPLICAS", default: 1))
            keyConcurrent = try environment.int("CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY", default: 0)
            tenantConcurrent = try environment.int("CONDUIT_GATEWAY_MAX_CONCURRENT_PER_TENANT", default: 0)
            placeLifetime = .seconds(try environment.int("CONDUIT_GATEWAY_CHAT_TIMEOUT_S", default: 900) + 60)
            if let text = environment.optionalString("CONDUIT_GATEWAY_MODEL_LIMITS") {
                guard let limits = try? JSONDecoder().decode([String: RateLimits].self, from: Data(text.utf8)) else {
                    throw ConfigurationError(key: "CONDUIT_GATEWAY_MODEL_LIMITS", expected: #"JSON {"model": {"rpm_limit": n, "tpm_limit": n}}"#)
                }
                modelLimits = limits
            }
        }

        /// Whether the request's body must be read: its tokens or its model matter.
        func meters(_ limits: CallerLimits) -> Bool {
            limits.key.tpm != nil || limits.tenant.tpm != nil || keyTPM > 0 || tenantTPM > 0 || limits.allowedModels != nil
                || !limits.keyModels.isEmpty || !limits.tenantModels.isEmpty || !modelLimits.isEmpty
        }

        /// The buckets of a request: `tokens` is nil on routes that do not count tokens.
        func buckets(for identity: CallerIdentity, model: String?, tokens: Int?) -> [RateBucket] {
            let limits = identity.limits
            var buckets: [RateBucket] = []
            func add(_ key: String, _ scope: RateLimits?, rpm: Int = 0, tpm: Int = 0, concurrent: Int = 0) {
                if case let limit = scope?.rpm ?? rpm, limit > 0 { buckets.append(RateBucket(key: key + ":rpm", kind: .requests, limit: limit, cost: 1)) }
                if let tokens, case let limit = scope?.tpm ?? tpm, limit > 0 {
                    buckets.append(RateBucket(key: key + ":tpm", kind: .tokens, limit: limit, cost: tokens))
                }
                if case let limit = scope?.maxConcurrent ?? concurrent, limit > 0 {
                    buckets.append(RateBucket(key: key + ":conc", kind: .inFlight, limit: limit, period: placeLifetime, cost: 1))
                }
            }
            add("rl:\(identity.keyID)", limits.key, rpm: keyRPM, tpm: keyTPM, concurrent: keyConcurrent)
            add("rl:tenant:\(identity.tenant)", limits.tenant, rpm: tenantRPM, tpm: tenantTPM, concurrent: tenantConcurrent)
            // Only models with a limit make buckets: a caller's model names cannot grow Redis.
            if let model {
                if let scope = limits.keyModels[model] { add("rl:\(identity.keyID):model:\(model)", scope) }
                if let scope = limits.tenantModels[model] ?? (limits.tenantModels.isEmpty ? modelLimits[model] : nil) {
                    add("rl:tenant:\(identity.tenant):model:\(model)", scope)
                }
            }
            return buckets
        }

        /// A bucket as one of `fallbackReplicas` replicas limits it alone.
        func share(_ bucket: RateBucket) -> RateBucket {
            var bucket = bucket
            bucket.limit = max(1, bucket.limit / fallbackReplicas)
            return bucket
        }
    }

    /// What the gateway reads of a chat or embeddings body: the model, and what bounds the tokens.
    struct Metered: Decodable {
        var model: String?
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var n: Int?

        enum CodingKeys: String, CodingKey {
            case model, n
            case maxTokens = "max_tokens"
            case maxCompletionTokens = "max_completion_tokens"
        }

        init() {}

        init(from decoder: any Decoder) throws {
            // Wrong types are the route's to refuse; here they only do not count.
            let container = try decoder.container(keyedBy: CodingKeys.self)
            model = try? container.decodeIfPresent(String.self, forKey: .model)
            maxTokens = try? container.decodeIfPresent(Int.self, forKey: .maxTokens)
            maxCompletionTokens = try? container.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
            n = try? container.decodeIfPresent(Int.self, forKey: .n)
        }

        /// Tokens to reserve for a request of `bytes`.
        func estimate(bytes: Int, completion: Int, chat: Bool) -> Int {
            let prompt = (bytes + 3) / 4
            guard chat else { return prompt }
            let answers = min(max(n ?? 1, 1), 128)
            return prompt + answers * max(0, maxCompletionTokens ?? maxTokens ?? completion)
        }
    }

    let limiter: any RateLimiter
    let fallback: LocalRateLimiter
    let policy: Policy
    let metrics: Metrics
    /// Until when Redis is not asked again after a failure.
    private let outage = Outage()
    private let settles: SettleCounter

    struct Metrics: Sendable {
        let fallback: Counter
        let degraded: Gauge
        let localBuckets: Gauge
        let refused: Counter
        let settleSkipped: Counter
        let settleFailed: Counter
    }

    init(limiter: any RateLimiter, policy: Policy, fallback: LocalRateLimiter = LocalRateLimiter(), maxSettles: Int = 10_000,
         registry: PrometheusCollectorRegistry) {
        self.limiter = limiter
        self.policy = policy
        self.fallback = fallback
        settles = SettleCounter(limit: maxSettles)
        metrics = Metrics(
            fallback: registry.makeCounter(descriptor: .init(
                namespace: "gateway", metricName: "rate_limit_fallback", unitName: "total",
                helpText: "Requests limited by this replica alone (each to its share of the limits) because Redis could not be reached.")),
            degraded: registry.makeGauge(descriptor: .init(
                namespace: "gateway", metricName: "rate_limit_degraded",
                helpText: "1 while rate limits are kept in this replica's memory because Redis could not be reached.")),
            localBuckets: registry.makeGauge(descriptor: .init(
                namespace: "gateway", metricName: "rate_limit_local_buckets",
                helpText: "Buckets the in-memory fallback holds (bounded by CONDUIT_GATEWAY_RATE_LIMIT_LOCAL_BUCKETS).")),
            refused: registry.makeCounter(descriptor: .init(
                namespace: "gateway", metricName: "rate_limited_requests", unitName: "total", helpText: "Requests refused with 429 by a rate limit.")),
            settleSkipped: registry.makeCounter(descriptor: .init(
                namespace: "gateway", metricName: "rate_limit_settles_skipped", unitName: "total",
                helpText: "Token reservations left at their estimate because too many settlements were in flight.")),
            settleFailed: registry.makeCounter(descriptor: .init(
                namespace: "gateway", metricName: "rate_limit_settles_failed", unitName: "total",
                helpText: "Token reservations left at their estimate because the limiter could not be reached."))
        )
    }

    static let meteredRoutes: Set<String> = ["/v1/chat/completions", "/v1/embeddings"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let identity = context.identity else { return try await next(request, context) }
        var request = request
        let usageName = HTTPField.Name(ConduitHeader.usageTokens)!
        let reportName = HTTPField.Name(ConduitHeader.reportUsage)!
        // Only the gateway asks a stream for its token count.
        if request.headers[reportName] != nil { request = Self.setting(request, reportName, to: nil) }
        let route = context.endpointPath ?? request.uri.path
        let chat = route == "/v1/chat/completions"
        var model: String?
        var tokens: Int?
        if request.method == .post, Self.meteredRoutes.contains(route), policy.meters(identity.limits) {
            let body = try await request.collectBody(upTo: context.maxUploadSize)
            let metered = try? JSONDecoder().decode(Metered.self, from: Data(body.readableBytesView))
            model = metered?.model
            tokens = (metered ?? Metered()).estimate(bytes: body.readableBytes, completion: policy.completionEstimate, chat: chat)
            if let allowed = identity.limits.allowedModels, let model, !allowed.contains(model) {
                throw APIError(status: .forbidden, type: .permission, message: "This API key may not use the model '\(model)'.",
                               param: "model", code: "model_not_allowed")
            }
        }
        let buckets = policy.buckets(for: identity, model: model, tokens: tokens)
        guard !buckets.isEmpty else {
            var response = try await next(request, context)
            response.headers[usageName] = nil
            return response
        }
        let id = context.requestID + ":" + UUID().uuidString
        let (verdict, used, local) = await decide(buckets, id: id, logger: context.logger)
        guard verdict.allowed else {
            metrics.refused.increment()
            let wait = verdict.retryAfter ?? .seconds(1)
            let tight = zip(used, verdict.decisions).first { !$0.1.allowed }?.0
            var refusal: APIError
            if let tight, tight.kind == .inFlight {
                refusal = APIError(status: .tooManyRequests, type: .rateLimit,
                                   message: "Too many requests at once: this \(Self.scope(of: tight)) may have \(tight.limit) in flight. Try again when one has finished.",
                                   code: "concurrency_limit_exceeded")
            } else {
                let what = tight.map { "\($0.limit) \($0.kind == .requests ? "requests" : "tokens") per minute for this \(Self.scope(of: $0))" } ?? "a rate limit"
                refusal = APIError(status: .tooManyRequests, type: .rateLimit,
                                   message: "Rate limit reached: \(what). Try again in \(Self.spoken(wait)).", code: "rate_limit_exceeded")
            }
            refusal.retryAfterSeconds = Self.wholeSeconds(wait)
            var response = ErrorEnvelopeMiddleware.response(refusal)
            Self.setHeaders(&response.headers, used, verdict)
            return response
        }
        let places = used.filter { $0.kind == .inFlight }
        let release = places.isEmpty ? nil : Release(limiter: local ? fallback : limiter, buckets: places, id: id, logger: context.logger)
        let reserved = used.filter { $0.kind == .tokens }
        if !reserved.isEmpty, chat { request = Self.setting(request, reportName, to: "1") }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            // A request refused behind the gateway used no model: its reservation goes back. The
            // refusal carries the headers too.
            if let tokens, !reserved.isEmpty { settle(reserved, delta: -tokens, local: local, logger: context.logger) }
            await release?.run()
            var refusal = ErrorEnvelopeMiddleware.response(error)
            Self.setHeaders(&refusal.headers, used, verdict)
            return refusal
        } catch {
            if let tokens, !reserved.isEmpty { settle(reserved, delta: -tokens, local: local, logger: context.logger) }
            await release?.run()
            throw error
        }
        if let release {
            // The place is given back once the answer's last byte (a stream's too) is written,
            // off the connection's path (the next request on it does not wait for Redis).
            let body = response.body
            response.body = ResponseBody { writer in
                do {
                    try await body.write(writer)
                } catch {
                    await release.run()
                    throw error
                }
                Task { await release.run() }
            }
        }
        Self.setHeaders(&response.headers, used, verdict)
        let reported = response.headers[usageName].flatMap(Int.init)
        response.headers[usageName] = nil
        guard let tokens, !reserved.isEmpty else { return response }
        if let reported {
            settle(reserved, delta: reported - tokens, local: local, logger: context.logger)
        } else if response.headers[.contentType]?.hasPrefix("text/event-stream") == true {
            let scanner = UsageScanner()
            let body = response.body.map { buffer in
                scanner.read(buffer)
                return buffer
            }
            response.body = ResponseBody { writer in
                try await body.write(writer)
                // A stream cut short keeps its estimate.
                if let count = scanner.tokens { settle(reserved, delta: count - tokens, local: local, logger: context.logger) }
            }
        } else if response.status.code >= 400 {
            settle(reserved, delta: -tokens, local: local, logger: context.logger)
        }
        return response
    }

    /// The shared limiter's verdict, or this replica's own while Redis is down; and the buckets
    /// as they were decided (a share of each, in the fallback), and whether the fallback decided.
    private func decide(_ buckets: [RateBucket], id: String, logger: Logger) async -> (RateVerdict, [RateBucket], Bool) {
        let skip = outage.until.withLock { until -> Bool in
            guard let end = until else { return false }
            if ContinuousClock.now < end { return true }
            until = nil
            return false
        }
        if !skip {
            do {
                let verdict = try await limiter.acquire(buckets, id: id)
                metrics.degraded.set(to: 0.0)
                return (verdict, buckets, false)
            } catch {
                outage.until.withLock { $0 = .now + .seconds(1) }
                metrics.degraded.set(to: 1.0)
                logger.warning("rate limiter unreachable; this replica limits alone for a second", metadata: [LogKey.error: "\(error)"])
            }
        }
        metrics.fallback.increment()
        let shares = buckets.map(policy.share)
        let verdict = (try? await fallback.acquire(shares, id: id)) ?? RateVerdict(allowed: true, retryAfter: nil, decisions: [])
        metrics.localBuckets.set(to: Double(fallback.count))
        return (verdict, shares, true)
    }

    /// Settles a reservation after the answer, off the request's path, a bounded number at a
    /// time, with the limiter that took it.
    private func settle(_ buckets: [RateBucket], delta: Int, local: Bool, logger: Logger) {
        guard delta != 0 else { return }
        guard settles.enter() else {
            metrics.settleSkipped.increment()
            return
        }
        let limiter: any RateLimiter = local ? fallback : self.limiter
        let metrics = self.metrics
        let settles = self.settles
        Task {
            defer { settles.leave() }
            do {
                try await limiter.settle(buckets, delta: delta)
            } catch {
                metrics.settleFailed.increment()
                logger.debug("a token reservation could not be settled", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    static func setting(_ request: Request, _ name: HTTPField.Name, to value: String?) -> Request {
        var head = request.head
        head.headerFields[name] = value
        return Request(head: head, body: request.body)
    }

    static func scope(of bucket: RateBucket) -> String {
        if bucket.key.contains(":model:") { return bucket.key.hasPrefix("rl:tenant:") ? "tenant and model" : "API key and model" }
        return bucket.key.hasPrefix("rl:tenant:") ? "tenant" : "API key"
    }

    /// Gives back a request's places in flight; a place Redis does not take back lapses.
    struct Release: Sendable {
        let limiter: any RateLimiter
        let buckets: [RateBucket]
        let id: String
        let logger: Logger

        func run() async {
            do { try await limiter.release(buckets, id: id) } catch {
                logger.warning("a place in flight could not be given back (it lapses)", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    /// OpenAI's headers, of the tightest bucket of each kind.
    static func setHeaders(_ headers: inout HTTPFields, _ buckets: [RateBucket], _ verdict: RateVerdict) {
        for kind in [RateBucket.Kind.requests, .tokens] {
            let decisions = zip(buckets, verdict.decisions).filter { $0.0.kind == kind }.map(\.1)
            guard let tightest = decisions.min(by: { $0.remaining < $1.remaining }) else { continue }
            headers[HTTPField.Name("x-ratelimit-limit-\(kind.rawValue)")!] = String(tightest.limit)
            headers[HTTPField.Name("x-ratelimit-remaining-\(kind.rawValue)")!] = String(tightest.remaining)
            headers[HTTPField.Name("x-ratelimit-reset-\(kind.rawValue)")!] = spoken(tightest.resetAfter)
        }
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

/// Until when the shared limiter is not asked again, after it failed.
final class Outage: Sendable {
    let until = Mutex<ContinuousClock.Instant?>(nil)
}

/// Settlements in flight, bounded.
final class SettleCounter: Sendable {
    private let count = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func enter() -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}

/// Finds a stream's token count (`: conduit-usage-tokens N`) in the bytes relayed, wherever the
/// chunks split it: it keeps the last bytes of each chunk to read across the boundary.
final class UsageScanner: Sendable {
    private struct State {
        var tail: [UInt8] = []
        var tokens: Int?
    }

    private let state = Mutex(State())
    private static let marker = Array(ConduitHeader.usageComment.utf8)

    var tokens: Int? { state.withLock { $0.tokens } }

    func read(_ buffer: ByteBuffer) {
        state.withLock { state in
            var bytes = state.tail
            bytes.append(contentsOf: buffer.readableBytesView)
            var index = 0
            while let found = Self.find(Self.marker, in: bytes, from: index) {
                var end = found + Self.marker.count
                var value = 0
                var digits = 0
                while end < bytes.count, bytes[end] >= 48, bytes[end] <= 57, digits < 12 {
                    value = value * 10 + Int(bytes[end] - 48)
                    end += 1
                    digits += 1
                }
                guard end < bytes.count else { break }  // the number may go on in the next chunk
                if digits > 0, bytes[end] == 10 { state.tokens = value }
                index = end
            }
            let keep = Self.marker.count + 16
            state.tail = bytes.count > keep ? Array(bytes[(bytes.count - keep)...]) : bytes
            // What was read completely is not read again.
            if index > bytes.count - state.tail.count { state.tail = Array(bytes[index...]) }
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count - start >= needle.count else { return nil }
        var position = start
        while position <= haystack.count - needle.count {
            if haystack[position] == needle[0], haystack[position..<(position + needle.count)].elementsEqual(needle) { return position }
            position += 1
        }
        return nil
    }
}
