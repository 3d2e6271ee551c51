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
    let router = try buildRouter(configuration: configuration, registry: registry, readiness: [.postgres(postgres), .redis(redis)])
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, redis],
        logger: logger,
        beforeServerStarts: [{ try await migrate(PromptMigrations.prompts, on: postgres, logger: logger) }]
    )
}

/// The routes: health and metrics for now; those to come go in the internal group, behind the
/// signed identity, over the stores they need as protocols.
func buildRouter(configuration: ServiceConfiguration, registry: PrometheusCollectorRegistry, readiness: [ReadinessCheck] = []) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: readiness)
    _ = try router.internalRoutes(configuration)
    return router
}
