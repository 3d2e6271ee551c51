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
    /// The key's own requests-per-minute limit, enforced by the gateway (not signed onwards).
    public var requestsPerMinute: Int?
    /// The key's own limit of requests in flight at once, enforced by the gateway (not signed onwards).
    public var maxConcurrent: Int?

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
    static let identityField = HTTPField.Name(identity)!
}
