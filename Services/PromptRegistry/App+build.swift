import ConduitKit
import ConduitPostgres
import ConduitRedis
import Hummingbird
import Logging
import Postgres
import Prometheus
import Redis

/// Templates, versions, labels and experiments (routes arrive with the prompt issue).
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let redis = RedisClient(configuration: try configuration.redis, registry: registry, logger: logger)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.postgres(postgres), .redis(redis)])
    // No routes of its own yet; those to come go in this group, behind the signed identity.
    _ = try router.internalRoutes(configuration)
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, redis],
        logger: logger,
        beforeServerStarts: [{ try await migrate(PromptMigrations.prompts, on: postgres, logger: logger) }]
    )
}
