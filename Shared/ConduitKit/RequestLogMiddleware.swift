import Hummingbird
import Logging

/// One log line per request, with route, status and duration (the request id and trace id
/// come from the context's logger).
public struct RequestLogMiddleware: RouterMiddleware {
    public typealias Context = ConduitRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        // Probes hit these every few seconds; they stay out of the info log.
        let quiet = ["/healthz", "/readyz", "/metrics"].contains(request.uri.path)
        context.logger.log(level: quiet ? .debug : .info, "request", metadata: [
            LogKey.method: .string(request.method.rawValue),
            LogKey.route: .string(context.endpointPath ?? "unmatched"),
            LogKey.status: .stringConvertible(response.status.code),
            LogKey.durationMilliseconds: .stringConvertible((milliseconds * 1000).rounded() / 1000),
        ])
        return response
    }
}
