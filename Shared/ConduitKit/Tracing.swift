import HTTPTypes
import Hummingbird
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// Traces: OpenTelemetry spans exported over OTLP/HTTP (protobuf) by swift-otel.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_OTLP_ENDPOINT` | unset: no tracing (e.g. `http://127.0.0.1:4318`; spans go to its `/v1/traces`) |
/// | `CONDUIT_TRACE_SAMPLE_RATIO` | 0.1 (share of new traces recorded; a caller's `traceparent` decides for its own) |
/// | `CONDUIT_TRACE_CONTENT` | 0 (1 puts prompt and completion text on model-call spans) |
/// | `CONDUIT_TRACE_QUEUE` | 2048 (finished spans waiting for export, at most; later ones are dropped) |
public struct TracingSettings: Sendable {
    /// The collector's base URL; nil when tracing is off.
    public var endpoint: String?
    public var sampleRatio: Double
    /// Prompt and completion text on model-call spans (`gen_ai.prompt`, `gen_ai.completion`).
    public var recordContent: Bool
    public var queueSize: Int

    public var enabled: Bool { endpoint != nil }

    init(environment: ConduitEnvironment) throws {
        let endpoint = environment.string("CONDUIT_OTLP_ENDPOINT", default: "")
        if !endpoint.isEmpty, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw ConfigurationError(key: "CONDUIT_OTLP_ENDPOINT", expected: "an http:// or https:// URL of an OTLP/HTTP collector")
        }
        self.endpoint = endpoint.isEmpty ? nil : endpoint
        sampleRatio = try environment.double("CONDUIT_TRACE_SAMPLE_RATIO", default: 0.1, in: 0...1)
        recordContent = try environment.bool("CONDUIT_TRACE_CONTENT", default: false)
        queueSize = try environment.int("CONDUIT_TRACE_QUEUE", default: 2048)
        guard queueSize > 0 else { throw ConfigurationError(key: "CONDUIT_TRACE_QUEUE", expected: "a positive number of spans") }
    }
}

public enum ConduitTracing {
    private static let bootstrapped = Mutex(false)

    /// Installs swift-otel's tracer as the process's tracer when `settings` enable tracing, and
    /// returns the service that exports its spans (run it beside the application; it flushes on
    /// shutdown). The service's name is the resource's `service.name`. Once per process.
    ///
    /// The tracer records every span it is asked for (`alwaysOn`): sampling happens before,
    /// in `RequestContextMiddleware`, which starts a server span only for a request it keeps
    /// (a caller's sampled flag, else `sampleRatio` of new traces). A request it drops costs
    /// no tracing call at all, and nothing below it starts spans, having no span to nest under.
    static func bootstrap(service: ServiceName, settings: TracingSettings, logger: Logger) throws -> (any Service)? {
        guard let endpoint = settings.endpoint else { return nil }
        guard bootstrapped.withLock({ done in defer { done = true }; return !done }) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = service.rawValue
        configuration.diagnosticLogger = .custom(logger)
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.propagators = [.traceContext]
        configuration.traces.sampler = .alwaysOn
        configuration.traces.batchSpanProcessor.maxQueueSize = settings.queueSize
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = endpoint.hasSuffix("/") ? endpoint + "v1/traces" : endpoint + "/v1/traces"
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }

    /// Starts the server span of a kept request: the child of the caller's span when
    /// `traceparent` names one, else a new trace. Returns the span and its context (what the
    /// request's own trace context becomes).
    static func startServerSpan(_ request: Request, parent: String?) -> (span: any Span, trace: TraceContext)? {
        var context = ServiceContext.topLevel
        if let parent { InstrumentationSystem.instrument.extract([ConduitHeader.traceparent: parent], into: &context, using: DictionaryExtractor()) }
        let span = InstrumentationSystem.tracer.startAnySpan("\(request.method.rawValue) \(request.uri.path)", context: context, ofKind: .server)
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(span.context, into: &carrier, using: DictionaryInjector())
        guard let trace = carrier[ConduitHeader.traceparent].flatMap(TraceContext.init(traceparent:)) else {
            span.end()
            return nil
        }
        span.attributes["http.request.method"] = request.method.rawValue
        span.attributes["url.path"] = request.uri.path
        return (span, trace)
    }

    /// Ends a server span with what the response was.
    static func finish(_ span: any Span, route: String?, status: Int) {
        if let route {
            span.operationName = route
            span.attributes["http.route"] = route
        }
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }
}

private struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key.lowercased()]
    }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key.lowercased()] = value
    }
}
