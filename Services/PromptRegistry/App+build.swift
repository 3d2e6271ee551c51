import ConduitKafka
import ConduitKit
import ConduitPostgres
import ConduitProtocol
import ConduitRedis
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus
import Redis

/// Templates, versions, labels and experiments (Postgres, schema `prompts`) with the hot copy
/// in Redis that orchestrators read; experiments' outcomes from `conduit.usage`.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_PROMPT_REGISTRY_GROUP` | `conduit-prompt-registry` (its Kafka consumer group) |
/// | `CONDUIT_PROMPT_REGISTRY_USAGE_TOPIC` | `conduit.usage` |
/// | `CONDUIT_PROMPT_MAX_TEMPLATE_BYTES` | 100000 (a version's templates together) |
/// | `CONDUIT_PROMPT_HOT_COPY_PENDING` | 10000 (prompts whose hot copy waits for Redis, at most) |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let redis = RedisClient(configuration: try configuration.redis, registry: registry, logger: logger)
    let store = PromptStore(postgres: postgres)
    let hotCopy = HotCopyWriter(redis: redis, store: store, registry: registry,
                                maxPending: try environment.int("CONDUIT_PROMPT_HOT_COPY_PENDING", default: 10_000), logger: logger)
    let consumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka,
            groupID: environment.string("CONDUIT_PROMPT_REGISTRY_GROUP", default: "conduit-prompt-registry"),
            topics: [environment.string("CONDUIT_PROMPT_REGISTRY_USAGE_TOPIC", default: KafkaTopic.usage)],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds,
            bufferBytes: try configuration.kafkaConsumerBufferBytes
        ),
        logger: logger
    )
    let outcomes = OutcomeConsumer(consumer: consumer, postgres: postgres, registry: registry, logger: logger)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.postgres(postgres), .redis(redis)])
    let routes = try router.internalRoutes(configuration)
    PromptController(store: store, hotCopy: hotCopy, maxTemplateBytes: try environment.int("CONDUIT_PROMPT_MAX_TEMPLATE_BYTES", default: 100_000))
        .addRoutes(to: routes)
    ExperimentController(store: store, hotCopy: hotCopy, registry: registry).addRoutes(to: routes)
    let migrated = StartGate()
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, redis, GatedService(hotCopy, after: migrated), GatedService(consumer, after: migrated), GatedService(outcomes, after: migrated),
                   try ConsumerLagReporter(consumers: [consumer], registry: registry, configuration: configuration)],
        logger: logger,
        beforeServerStarts: [{
            try await migrate(PromptMigrations.prompts, on: postgres, logger: logger)
            migrated.open()
        }]
    )
}
