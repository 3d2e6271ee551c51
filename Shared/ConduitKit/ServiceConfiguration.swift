import Foundation
import Logging

/// The seven services, their default ports and the environment prefix of each.
public enum ServiceName: String, Sendable, CaseIterable {
    case gateway
    case orchestrator
    case embedder
    case retriever
    case costService = "cost-service"
    case promptRegistry = "prompt-registry"
    case metricsExporter = "metrics-exporter"

    public var defaultPort: Int {
        switch self {
        case .gateway: 8080
        case .orchestrator: 8081
        case .embedder: 8082
        case .retriever: 8083
        case .costService: 8084
        case .promptRegistry: 8085
        case .metricsExporter: 8086
        }
    }

    /// `CONDUIT_COST_SERVICE`, … : the prefix of this service's own settings.
    public var environmentPrefix: String {
        "CONDUIT_" + rawValue.uppercased().replacingOccurrences(of: "-", with: "_")
    }
}

/// What every service reads from the environment at start. Defaults run the local stack. The
/// settings of Postgres, Redis, Kafka and the HTTP client are read by the kit of each
/// (`ConduitPostgres`, `ConduitRedis`, `ConduitKafka`, `ConduitHTTP`), so a service links and
/// checks only what it uses.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_<SERVICE>_HOST` / `_PORT` | `127.0.0.1` / the service's port (8080–8086) |
/// | `CONDUIT_<SERVICE>_URL` | `http://127.0.0.1:<port>` (how other services reach it) |
/// | `CONDUIT_LOG_LEVEL` | `info` |
/// | `CONDUIT_SHUTDOWN_TIMEOUT_S` | 30 (graceful shutdown's limit; then the rest is cancelled, and 5 s later the process exits) |
/// | `CONDUIT_INTERNAL_KEY`, `_PREVIOUS`, `CONDUIT_INTERNAL_IDENTITY_TTL_S` | see `InternalKeyring` |
/// | `CONDUIT_DEBUG_ENDPOINTS` | `false` (enables `/internal/sleep` for shutdown tests) |
/// | `CONDUIT_METRICS_EXPORTER_GROUP` | `conduit-metrics-exporter` (its Kafka consumer group) |
public struct ServiceConfiguration: Sendable {
    public var service: ServiceName
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    /// Base URLs of the other services.
    public var serviceURLs: [ServiceName: String]
    public var debugEndpoints: Bool
    /// How long graceful shutdown may take before the rest is cancelled (`CONDUIT_SHUTDOWN_TIMEOUT_S`).
    public var shutdownTimeout: Duration
    /// The key that signs identities between services (`CONDUIT_INTERNAL_KEY`); nil when unset,
    /// and then a service refuses to start (see `requireInternalKeys`).
    public var internalKeys: InternalKeyring?
    /// The environment this was read from, for settings of one service only.
    public var environment: ConduitEnvironment
    /// OpenTelemetry traces (`CONDUIT_OTLP_ENDPOINT`, …; see `TracingSettings`).
    public var tracing: TracingSettings

    public init(service: ServiceName, environment: ConduitEnvironment = ConduitEnvironment()) throws {
        self.service = service
        self.environment = environment
        let prefix = service.environmentPrefix
        host = environment.string("\(prefix)_HOST", default: "127.0.0.1")
        port = try environment.int("\(prefix)_PORT", default: service.defaultPort)
        let level = environment.string("CONDUIT_LOG_LEVEL", default: "info").lowercased()
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ConfigurationError(key: "CONDUIT_LOG_LEVEL", expected: "one of trace, debug, info, notice, warning, error, critical")
        }
        self.logLevel = logLevel
        shutdownTimeout = .seconds(try environment.int("CONDUIT_SHUTDOWN_TIMEOUT_S", default: 30))
        var urls: [ServiceName: String] = [:]
        for other in ServiceName.allCases {
            urls[other] = environment.string("\(other.environmentPrefix)_URL", default: "http://127.0.0.1:\(other.defaultPort)")
        }
        serviceURLs = urls
        debugEndpoints = try environment.bool("CONDUIT_DEBUG_ENDPOINTS", default: false)
        internalKeys = try InternalKeyring(environment: environment)
        tracing = try TracingSettings(environment: environment)
    }

    /// The signing keys, or the configuration error that stops a service started without them.
    public func requireInternalKeys() throws -> InternalKeyring {
        guard let internalKeys else {
            throw ConfigurationError(key: "CONDUIT_INTERNAL_KEY", expected: "set to a secret of at least \(InternalKeyring.minimumKeyLength) characters shared by all services")
        }
        return internalKeys
    }
}
