import ConduitKit
import ConduitProtocol
import HTTP
import Hummingbird
import Kafka
import Logging
import Prometheus
import Providers
import Redis

/// The chat pipeline: the model catalog, provider calls over libcurl with retries, fallback and
/// circuit breaking, streaming, and a usage event per request (sessions and the semantic cache
/// arrive with their issue).
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_MODEL_CATALOG` | `deploy/models.yaml` |
/// | `CONDUIT_PROVIDER_MAX_RETRIES` | 2 (per deployment, after the first attempt) |
/// | `CONDUIT_PROVIDER_BACKOFF_MS` | 250 (first backoff; doubles, full jitter, at most 8 s) |
/// | `CONDUIT_CIRCUIT_FAILURES` | 3 (consecutive failures that open a deployment's breaker) |
/// | `CONDUIT_CIRCUIT_COOLDOWN_S` | 30 |
/// | `CONDUIT_ORCHESTRATOR_USAGE_TOPIC` | `conduit.usage` |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let catalogPath = environment.string("CONDUIT_MODEL_CATALOG", default: "deploy/models.yaml")
    let catalog = try ModelCatalog(yamlFile: catalogPath, environment: environment.values)
    let redis = RedisClient(configuration: configuration.redis, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: configuration.kafka), logger: logger)
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let providers = ProviderRouter(
        catalog: catalog, client: ProviderClient(http: http, keys: APIKeys(environment: environment.values)),
        policy: RetryPolicy(
            maxRetries: try environment.int("CONDUIT_PROVIDER_MAX_RETRIES", default: 2),
            baseDelay: .milliseconds(try environment.int("CONDUIT_PROVIDER_BACKOFF_MS", default: 250))),
        breakerThreshold: try environment.int("CONDUIT_CIRCUIT_FAILURES", default: 3),
        breakerCooldown: .seconds(try environment.int("CONDUIT_CIRCUIT_COOLDOWN_S", default: 30)),
        registry: registry, logger: logger)
    logger.info("model catalog loaded", metadata: [
        "path": "\(catalogPath)", "models": "\(catalog.models.count)",
        "available": "\(providers.availableModels.map(\.name).joined(separator: ","))",
    ])
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.redis(redis), .kafka(producer)])
    ChatController(router: providers, usage: UsageRecorder(producer: producer, topic: environment.string("CONDUIT_ORCHESTRATOR_USAGE_TOPIC", default: KafkaTopic.usage), logger: logger)).addRoutes(to: router)
    return makeConduitApplication(router: router, configuration: configuration, services: [redis, producer, http], logger: logger)
}
