import HTTPTypes
import Hummingbird
import Prometheus

/// Counts requests and records their latency per route, method and status:
/// `conduit_http_requests_total` and `conduit_http_request_duration_seconds`; and
/// `conduit_http_requests_in_flight`, requests whose response has not been written to its end
/// (a stream counts until its last byte): what scales the gateway where CPU says little.
public struct HTTPMetricsMiddleware: RouterMiddleware {
    public typealias Context = ConduitRequestContext

    static let buckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    private let registry: PrometheusCollectorRegistry
    private let service: String
    private let inFlight: Gauge

    public init(registry: PrometheusCollectorRegistry, service: String) {
        self.registry = registry
        self.service = service
        inFlight = registry.makeGauge(
            descriptor: .init(namespace: "conduit", subsystem: "http", metricName: "requests_in_flight",
                              helpText: "Requests being served, streams until their last byte."),
            labels: [("service", service)])
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        // Released when the response body is (written, or dropped unwritten), or right away if
        // the handler throws: the count cannot drift whatever happens to the response.
        let token = InFlightToken(inFlight)
        var response = try await next(request, context)
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            try await body.write(writer)
            token.keep()
        }
        // Unmatched paths share one label so scanners cannot blow up the series count.
        let labels = [
            ("service", service),
            ("route", context.endpointPath ?? "unmatched"),
            ("method", request.method.rawValue),
            ("status", String(response.status.code)),
        ]
        registry.makeCounter(
            descriptor: .init(namespace: "conduit", subsystem: "http", metricName: "requests", unitName: "total", helpText: "HTTP requests served."),
            labels: labels
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "conduit", subsystem: "http", metricName: "request_duration", unitName: "seconds", helpText: "Time to the response head."),
            labels: labels,
            buckets: Self.buckets
        ).record(ContinuousClock.now - start)
        return response
    }
}

/// Holds one unit of the in-flight gauge for as long as it lives.
private final class InFlightToken: Sendable {
    private let gauge: Gauge

    init(_ gauge: Gauge) {
        self.gauge = gauge
        gauge.increment()
    }

    /// Keeps the token alive until the caller's closure has run this far.
    func keep() {}

    deinit { gauge.decrement() }
}
