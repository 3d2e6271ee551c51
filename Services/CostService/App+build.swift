import ConduitKafka
import ConduitKit
import ConduitProtocol
import ConduitPostgres
import ConduitRedis
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus
import Redis

/// Model catalog, budgets, the usage ledger and live spend counters. For now: the ledger,
/// consumed from `conduit.usage`, and `GET /v1/usage` over its rollups (budgets and forecasts
/// arrive with the cost issue).
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_COST_SERVICE_GROUP` | `conduit-cost-service` (its Kafka consumer group) |
/// | `CONDUIT_COST_SERVICE_USAGE_TOPIC` / `_DLQ_TOPIC` | `conduit.usage` / `conduit.usage.dlq` |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let redis = RedisClient(configuration: try configuration.redis, registry: registry, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: try configuration.kafka), logger: logger)
    let consumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka,
            groupID: environment.string("CONDUIT_COST_SERVICE_GROUP", default: "conduit-cost-service"),
            topics: [environment.string("CONDUIT_COST_SERVICE_USAGE_TOPIC", default: KafkaTopic.usage)],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds,
            bufferBytes: try configuration.kafkaConsumerBufferBytes
        ),
        logger: logger
    )
    let ledger = LedgerConsumer(
        consumer: consumer,
        dlq: DeadLetterQueue(producer: producer, topic: environment.string("CONDUIT_COST_SERVICE_DLQ_TOPIC", default: KafkaTopic.usageDLQ)),
        ledger: PostgresUsageLedger(postgres: postgres), metrics: .init(registry: registry), logger: logger)
    let router = try buildRouter(
        configuration: configuration, report: PostgresUsageReport(postgres: postgres), registry: registry,
        readiness: [.postgres(postgres), .redis(redis), .kafka(producer)])
    // The consumer joins its group once the ledger's tables exist.
    let migrated = StartGate()
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, redis, producer, GatedService(consumer, after: migrated), GatedService(ledger, after: migrated)],
        logger: logger,
        beforeServerStarts: [{
            try await migrate(CostMigrations.cost, on: postgres, logger: logger)
            migrated.open()
        }]
    )
}

/// The routes, behind the signed identity: `GET /v1/usage` over the usage report.
func buildRouter(configuration: ServiceConfiguration, report: any UsageReport, registry: PrometheusCollectorRegistry,
                 readiness: [ReadinessCheck] = []) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: readiness)
    UsageController(report: report).addRoutes(to: try router.internalRoutes(configuration))
    return router
}
