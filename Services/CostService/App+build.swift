import ConduitKafka
import ConduitKit
import ConduitPostgres
import ConduitRedis
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus
import Redis

/// Model catalog, budgets, the usage ledger and live spend counters (routes arrive with the cost issue).
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let redis = RedisClient(configuration: try configuration.redis, registry: registry, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: try configuration.kafka), logger: logger)
    let router = makeConduitRouter(
        configuration: configuration,
        registry: registry,
        readiness: [.postgres(postgres), .redis(redis), .kafka(producer)]
    )
    // No routes of its own yet; those to come go in this group, behind the signed identity.
    _ = try router.internalRoutes(configuration)
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, redis, producer],
        logger: logger,
        beforeServerStarts: [{ try await migrate(CostMigrations.cost, on: postgres, logger: logger) }]
    )
}
