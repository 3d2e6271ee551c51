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
    /// Who is calling, once the gateway has authenticated the request.
    public var identity: CallerIdentity?

    public init(source: Source) {
        coreContext = .init(source: source)
        requestID = ""
        // RequestContextMiddleware sets the real one first thing; no random draw here.
        trace = TraceContext(traceID: "", spanID: "", sampled: false)
    }

    /// Request bodies larger than this are refused with 413 before decoding. 4 MiB.
    public var maxUploadSize: Int { 4 * 1024 * 1024 }
}

/// An authenticated caller: the tenant its key belongs to, the key's id and roles. The gateway
/// forwards it to internal services in the `X-Conduit-*` headers.
public struct CallerIdentity: Sendable, Equatable {
    public var tenant: String
    public var keyID: String
    public var roles: [String]
    /// The key's defaults for the `conduit` object of chat requests (JSON), if it has any.
    public var chatDefaults: String?

    public init(tenant: String, keyID: String, roles: [String], chatDefaults: String? = nil) {
        self.tenant = tenant
        self.keyID = keyID
        self.roles = roles
        self.chatDefaults = chatDefaults
    }

    /// The identity headers for the next hop.
    public var headers: [(name: String, value: String)] {
        var headers = [(name: ConduitHeader.tenant, value: tenant), (ConduitHeader.keyID, keyID), (ConduitHeader.roles, roles.joined(separator: ","))]
        if let chatDefaults { headers.append((ConduitHeader.keyDefaults, chatDefaults)) }
        return headers
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
    public static let tenant = "X-Conduit-Tenant"
    public static let keyID = "X-Conduit-Key-Id"
    public static let roles = "X-Conduit-Roles"
    /// The calling key's defaults for a chat request's `conduit` object, as one line of JSON.
    public static let keyDefaults = "X-Conduit-Key-Defaults"
}
