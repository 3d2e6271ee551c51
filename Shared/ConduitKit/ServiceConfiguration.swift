import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Redis

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

/// Everything a service reads from the environment at start. Defaults run the local stack.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_<SERVICE>_HOST` / `_PORT` | `127.0.0.1` / the service's port (8080–8086) |
/// | `CONDUIT_<SERVICE>_URL` | `http://127.0.0.1:<port>` (how other services reach it) |
/// | `CONDUIT_LOG_LEVEL` | `info` |
/// | `CONDUIT_POSTGRES_HOST` / `_PORT` / `_USER` / `_PASSWORD` / `_DATABASE` / `_POOL_SIZE` | `127.0.0.1` / `55432` / `conduit` / none / `conduit` / 8 |
/// | `CONDUIT_POSTGRES_STATEMENT_TIMEOUT_MS` | 30000 (server-side limit per statement; TCP keep-alive probes after 30 s idle) |
/// | `CONDUIT_SHUTDOWN_TIMEOUT_S` | 30 (graceful shutdown's limit; then the rest is cancelled, and 5 s later the process exits) |
/// | `CONDUIT_REDIS_HOST` / `_PORT` / `_CONNECTIONS` | `127.0.0.1` / `56379` / 4 |
/// | `CONDUIT_REDIS_MAX_QUEUED` | 10000 (requests waiting per connection; beyond: the command fails at once) |
/// | `CONDUIT_KAFKA_BROKERS` | `127.0.0.1:59092` |
/// | `CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS` | 300000 |
/// | `CONDUIT_KAFKA_CONSUMER_BUFFER_BYTES` | 67108864 (bytes a consumer holds ahead of its reader, and librdkafka's prefetch limit) |
/// | `CONDUIT_KAFKA_COMPRESSION` | `lz4` (producers' `compression.type`: `none`, `gzip`, `snappy`, `lz4`, `zstd`) |
/// | `CONDUIT_KAFKA_MAX_MESSAGE_BYTES` | 8388608 (the largest message a producer sends, before compression) |
/// | `CONDUIT_INTERNAL_KEY`, `_PREVIOUS`, `CONDUIT_INTERNAL_IDENTITY_TTL_S` | see `InternalKeyring` |
/// | `CONDUIT_DEBUG_ENDPOINTS` | `false` (enables `/internal/sleep` for shutdown tests) |
/// | `CONDUIT_METRICS_EXPORTER_GROUP` | `conduit-metrics-exporter` (its Kafka consumer group) |
public struct ServiceConfiguration: Sendable {
    public var service: ServiceName
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    public var postgres: PostgresConfiguration
    public var redis: RedisConfiguration
    public var kafka: KafkaConfiguration
    public var kafkaMaxPollIntervalMilliseconds: Int
    /// Bytes a consumer buffers ahead of its reader (`CONDUIT_KAFKA_CONSUMER_BUFFER_BYTES`).
    public var kafkaConsumerBufferBytes: Int
    public var http: HTTPClientConfiguration
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
        postgres = PostgresConfiguration(
            host: environment.string("CONDUIT_POSTGRES_HOST", default: "127.0.0.1"),
            port: try environment.int("CONDUIT_POSTGRES_PORT", default: 55432),
            user: environment.string("CONDUIT_POSTGRES_USER", default: "conduit"),
            password: environment.optionalString("CONDUIT_POSTGRES_PASSWORD"),
            database: environment.string("CONDUIT_POSTGRES_DATABASE", default: "conduit"),
            maxConnections: try environment.int("CONDUIT_POSTGRES_POOL_SIZE", default: 8),
            applicationName: service.rawValue
        )
        postgres.statementTimeoutMilliseconds = try environment.int("CONDUIT_POSTGRES_STATEMENT_TIMEOUT_MS", default: 30_000)
        shutdownTimeout = .seconds(try environment.int("CONDUIT_SHUTDOWN_TIMEOUT_S", default: 30))
        redis = RedisConfiguration(
            host: environment.string("CONDUIT_REDIS_HOST", default: "127.0.0.1"),
            port: try environment.int("CONDUIT_REDIS_PORT", default: 56379),
            connections: try environment.int("CONDUIT_REDIS_CONNECTIONS", default: 4),
            maxQueued: try environment.int("CONDUIT_REDIS_MAX_QUEUED", default: 10_000)
        )
        kafka = KafkaConfiguration(
            bootstrapServers: environment.string("CONDUIT_KAFKA_BROKERS", default: "127.0.0.1:59092"),
            clientID: "conduit-\(service.rawValue)",
            producerProperties: [
                "compression.type": environment.string("CONDUIT_KAFKA_COMPRESSION", default: "lz4"),
                "message.max.bytes": String(try environment.int("CONDUIT_KAFKA_MAX_MESSAGE_BYTES", default: KafkaProducerConfiguration.defaultMaxMessageBytes)),
            ]
        )
        kafkaMaxPollIntervalMilliseconds = try environment.int("CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS", default: 300_000)
        kafkaConsumerBufferBytes = try environment.int("CONDUIT_KAFKA_CONSUMER_BUFFER_BYTES", default: 64 << 20)
        http = HTTPClientConfiguration()
        var urls: [ServiceName: String] = [:]
        for other in ServiceName.allCases {
            urls[other] = environment.string("\(other.environmentPrefix)_URL", default: "http://127.0.0.1:\(other.defaultPort)")
        }
        serviceURLs = urls
        debugEndpoints = try environment.bool("CONDUIT_DEBUG_ENDPOINTS", default: false)
        internalKeys = try InternalKeyring(environment: environment)
    }

    /// The signing keys, or the configuration error that stops a service started without them.
    public func requireInternalKeys() throws -> InternalKeyring {
        guard let internalKeys else {
            throw ConfigurationError(key: "CONDUIT_INTERNAL_KEY", expected: "set to a secret of at least \(InternalKeyring.minimumKeyLength) characters shared by all services")
        }
        return internalKeys
    }
}
