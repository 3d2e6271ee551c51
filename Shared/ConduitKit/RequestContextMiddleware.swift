import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Gives every request an id and a trace context, puts both on the request's logger, and
/// returns them in `X-Request-Id` and `traceparent` response headers.
public struct RequestContextMiddleware: RouterMiddleware {
    public typealias Context = ConduitRequestContext

    /// With tracing on, the trace context is the current span's (`TracingMiddleware` runs
    /// first), so log lines and the next hop name the spans the collector receives.
    let tracing: Bool

    public init(tracing: Bool = false) {
        self.tracing = tracing
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let received = request.headers[HTTPField.Name(ConduitHeader.requestID)!]
        context.requestID = received.flatMap(Self.acceptableID) ?? UUID().uuidString.lowercased()
        if tracing, let span = ConduitTracing.currentTraceparent().flatMap(TraceContext.init(traceparent:)) {
            context.trace = span
        } else if let parent = request.headers[HTTPField.Name(ConduitHeader.traceparent)!].flatMap(TraceContext.init(traceparent:)) {
            context.trace = parent.child()
        } else {
            context.trace = .random()
        }
        context.logger[metadataKey: LogKey.requestID] = .string(context.requestID)
        context.logger[metadataKey: LogKey.traceID] = .string(context.trace.traceID)
        context.logger[metadataKey: LogKey.spanID] = .string(context.trace.spanID)
        var response = try await next(request, context)
        response.headers[HTTPField.Name(ConduitHeader.requestID)!] = context.requestID
        response.headers[HTTPField.Name(ConduitHeader.traceparent)!] = context.trace.traceparent
        return response
    }

    /// A caller's id is kept only if it is short and printable, so it cannot forge log lines.
    static func acceptableID(_ id: String) -> String? {
        guard !id.isEmpty, id.count <= 128,
              id.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F })
        else { return nil }
        return id
    }
}
