import ConduitKit
import Foundation
import HTTP

/// Calls another Conduit service, carrying the caller's request id, trace and identity headers.
public struct ServiceClient: Sendable {
    public let http: HTTPClient
    public let baseURLs: [ServiceName: String]

    public init(http: HTTPClient, baseURLs: [ServiceName: String]) {
        self.http = http
        self.baseURLs = baseURLs
    }

    /// The headers that carry a request to the next hop: its id, the trace (this hop's span as
    /// the parent, as W3C Trace Context has it) and the caller's signed identity; `extra` adds
    /// headers of the caller's the next hop reads.
    public static func propagatedHeaders(from context: ConduitRequestContext, extra: [(name: String, value: String)] = []) -> [(name: String, value: String)] {
        var headers = [
            (name: ConduitHeader.requestID, value: context.requestID),
            (ConduitHeader.traceparent, context.trace.traceparent),
        ]
        if let token = context.identityToken { headers.append((ConduitHeader.identity, token)) }
        return headers + extra
    }

    public func send(
        to service: ServiceName,
        method: String = "POST",
        path: String,
        body: [UInt8]? = nil,
        headers: [(name: String, value: String)],
        timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        guard let base = baseURLs[service] else { throw HTTPClientError(.invalidRequest, reason: "no URL for \(service.rawValue)") }
        var allHeaders = headers
        if body != nil { allHeaders.append(("Content-Type", "application/json")) }
        return try await http.execute(HTTPRequest(method: method, url: base + path, headers: allHeaders, body: body, timeout: timeout))
    }
}
