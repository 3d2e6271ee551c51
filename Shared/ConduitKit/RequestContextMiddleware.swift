import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Tracing

/// Gives every request an id and a trace context, puts both on the request's logger, and
/// returns them in `X-Request-Id` and `traceparent` response headers.
public struct RequestContextMiddleware: RouterMiddleware {
    public typealias Context = ConduitRequestContext

    /// With tracing on, the share of new traces kept (a caller's `traceparent` decides for its
    /// own: sampled, kept); nil when tracing is off. A kept request gets a server span, and its
    /// trace context is that span's, so log lines and the next hop name the spans the
    /// collector receives; a dropped one is marked unsampled for the hops after it.
    let sampleRatio: Double?

    public init(sampleRatio: Double? = nil) {
        self.sampleRatio = sampleRatio
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let received = request.headers[HTTPField.Name(ConduitHeader.requestID)!]
        context.requestID = received.flatMap(Self.acceptableID) ?? UUID().uuidString.lowercased()
        let header = request.headers[HTTPField.Name(ConduitHeader.traceparent)!]
        let parent = header.flatMap(TraceContext.init(traceparent:))
        if let sampleRatio, parent?.sampled ?? (Double.random(in: 0..<1) < sampleRatio),
           let started = ConduitTracing.startServerSpan(request, parent: parent == nil ? nil : header) {
            context.trace = started.trace
            return try await traced(request, context: context, span: started.span, next: next)
        }
        if let parent {
            context.trace = parent.child()
        } else {
            context.trace = .random()
            if sampleRatio != nil { context.trace.sampled = false }
        }
        return try await respond(request, context: context, next: next)
    }

    private func respond(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.logger[metadataKey: LogKey.requestID] = .string(context.requestID)
        context.logger[metadataKey: LogKey.traceID] = .string(context.trace.traceID)
        context.logger[metadataKey: LogKey.spanID] = .string(context.trace.spanID)
        var response = try await next(request, context)
        response.headers[HTTPField.Name(ConduitHeader.requestID)!] = context.requestID
        response.headers[HTTPField.Name(ConduitHeader.traceparent)!] = context.trace.traceparent
        return response
    }

    /// `respond` inside the span: spans started by the handler nest under it; it ends after
    /// the response's last byte (a stream's included), or when the handler throws.
    private func traced(_ request: Request, context: Context, span: any Span, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            var response = try await ServiceContext.$current.withValue(span.context) {
                try await respond(request, context: context, next: next)
            }
            let body = response.body
            let status = Int(response.status.code)
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                do {
                    try await body.write(writer)
                } catch {
                    span.recordError(error)
                    ConduitTracing.finish(span, route: context.endpointPath, status: status)
                    throw error
                }
                ConduitTracing.finish(span, route: context.endpointPath, status: status)
            }
            return response
        } catch {
            span.recordError(error)
            ConduitTracing.finish(span, route: context.endpointPath, status: Int((error as? any HTTPResponseError)?.status.code ?? 500))
            throw error
        }
    }

    /// A caller's id is kept only if it is short and printable, so it cannot forge log lines.
    static func acceptableID(_ id: String) -> String? {
        guard !id.isEmpty, id.count <= 128,
              id.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F })
        else { return nil }
        return id
    }
}
