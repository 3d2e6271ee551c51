import HTTPTypes
import Hummingbird
import Logging

/// The request context of every Conduit service: request id and trace context, set by
/// `RequestContextMiddleware` before anything else runs.
public struct ConduitRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// `X-Request-Id` as received, or generated here.
    public var requestID: String
    /// This hop's span in the caller's trace (or a new trace).
    public var trace: TraceContext
    /// Who is calling: set by the gateway's authentication, or on an internal service from the
    /// identity the gateway signed.
    public var identity: CallerIdentity?
    /// The signed form of `identity` (`X-Conduit-Identity`), passed on unchanged to the next hop.
    public var identityToken: String?
    /// The peer's IP address, when the connection has one (the audit trail's source).
    public var sourceAddress: String?

    public init(source: Source) {
        coreContext = .init(source: source)
        sourceAddress = source.channel.remoteAddress?.ipAddress
        requestID = ""
        // RequestContextMiddleware sets the real one first thing; no random draw here.
        trace = TraceContext(traceID: "", spanID: "", sampled: false)
    }

    /// Request bodies larger than this are refused with 413 before decoding. 4 MiB.
    public var maxUploadSize: Int { 4 * 1024 * 1024 }
}

/// An authenticated caller: the tenant its key belongs to, the key's id and roles, and the
/// team and user the key is issued to. Internal services receive it signed (`InternalKeyring`).
public struct CallerIdentity: Sendable, Equatable {
    public var tenant: String
    public var keyID: String
    public var roles: [String]
    public var team: String?
    public var user: String?
    /// The key's defaults for the `conduit` object of chat requests (JSON), if it has any.
    public var chatDefaults: String?
    /// The key's tags (cost attribution; tag budgets apply to them).
    public var tags: [String]
    /// The models (and routers) the key may use, nil for every model: signed onwards, so that a
    /// router chooses among these only.
    public var models: [String]?
    /// What the gateway enforces for this caller: its key's and tenant's limits and the models
    /// it may use (not signed onwards).
    public var limits = CallerLimits()

    public init(tenant: String, keyID: String, roles: [String], team: String? = nil, user: String? = nil, chatDefaults: String? = nil,
                tags: [String] = []) {
        self.tags = tags
        self.tenant = tenant
        self.keyID = keyID
        self.roles = roles
        self.team = team
        self.user = user
        self.chatDefaults = chatDefaults
    }
}

/// Requests per minute, tokens per minute and requests in flight allowed to one scope (a key, a
/// tenant, or a model within either); nil is no limit of that kind. JSON: `rpm_limit`,
/// `tpm_limit`, `max_concurrent`.
public struct RateLimits: Sendable, Equatable, Codable {
    public var rpm: Int?
    public var tpm: Int?
    public var maxConcurrent: Int?

    public init(rpm: Int? = nil, tpm: Int? = nil, maxConcurrent: Int? = nil) {
        self.rpm = rpm
        self.tpm = tpm
        self.maxConcurrent = maxConcurrent
    }

    public var isEmpty: Bool { rpm == nil && tpm == nil && maxConcurrent == nil }

    enum CodingKeys: String, CodingKey {
        case rpm = "rpm_limit"
        case tpm = "tpm_limit"
        case maxConcurrent = "max_concurrent"
    }
}

/// A caller's limits as its key and tenant set them, and the models its key may use.
public struct CallerLimits: Sendable, Equatable {
    public var key = RateLimits()
    public var tenant = RateLimits()
    /// Limits of one model's traffic, by model name: this key's, and the whole tenant's.
    public var keyModels: [String: RateLimits] = [:]
    public var tenantModels: [String: RateLimits] = [:]
    /// The models (and routers) the key may ask for; nil is every model.
    public var allowedModels: [String]?

    public init() {}
}

/// Metadata keys of ConduitKit's log lines.
public enum LogKey {
    public static let requestID = "request_id"
    public static let traceID = "trace_id"
    public static let spanID = "span_id"
    public static let service = "service"
    public static let method = "method"
    public static let route = "route"
    public static let status = "status"
    public static let durationMilliseconds = "duration_ms"
    public static let error = "error"
}

/// Header names Conduit uses between services (DESIGN.md).
public enum ConduitHeader {
    public static let requestID = "X-Request-Id"
    public static let traceparent = "traceparent"
    /// The caller's identity as the gateway signed it (`InternalKeyring`).
    public static let identity = "X-Conduit-Identity"
    /// Tokens a model call of the request used (prompt + completion), on a JSON answer: the
    /// gateway settles its tokens-per-minute reservation with it.
    public static let usageTokens = "X-Conduit-Usage-Tokens"
    /// Sent by the gateway when it needs a stream's token count: the stream then carries it in an
    /// SSE comment line, `: conduit-usage-tokens N`, before `data: [DONE]` (comment lines are
    /// ignored by SSE clients).
    public static let reportUsage = "X-Conduit-Report-Usage"
    /// The SSE comment a stream's token count rides on.
    public static let usageComment = ": conduit-usage-tokens "
    static let identityField = HTTPField.Name(identity)!
}
