import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// Builds the router every service starts from: request ids and tracing, request logs, metrics,
/// the error envelope, and the health routes.
public func makeConduitRouter(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry,
    readiness: [ReadinessCheck]
) -> Router<ConduitRequestContext> {
    let router = Router(context: ConduitRequestContext.self)
    router.add(middleware: RequestContextMiddleware(sampleRatio: configuration.tracing.enabled ? configuration.tracing.sampleRatio : nil))
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: HTTPMetricsMiddleware(registry: registry, service: configuration.service.rawValue))
    router.add(middleware: ErrorEnvelopeMiddleware())
    HealthController(service: configuration.service.rawValue, checks: readiness, registry: registry).addRoutes(to: router)
    if configuration.debugEndpoints {
        // Lets tests hold a request in flight across SIGTERM; off unless CONDUIT_DEBUG_ENDPOINTS is set.
        router.get("/internal/sleep") { request, _ in
            let milliseconds = min(request.uri.queryParameters.get("ms", as: Int.self) ?? 1000, 30_000)
            try await Task.sleep(for: .milliseconds(milliseconds))
            return "slept \(milliseconds)"
        }
    }
    return router
}

/// The Hummingbird application of one service. `services` run in its service group in the given
/// order and shut down in reverse, after the HTTP server has drained its in-flight requests.
/// `beforeServerStarts` runs once dependencies' services have started (e.g. migrations).
public func makeConduitApplication(
    router: Router<ConduitRequestContext>,
    configuration: ServiceConfiguration,
    services: [any Service],
    logger: Logger,
    beforeServerStarts: [@Sendable () async throws -> Void] = []
) -> Application<RouterResponder<ConduitRequestContext>> {
    var app = Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [MalformedRequestHandler()])),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: configuration.service.rawValue),
        services: services,
        logger: logger
    )
    for process in beforeServerStarts { app.beforeServerStarts(perform: process) }
    return app
}
