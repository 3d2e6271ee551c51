import ConduitHTTP
import ConduitKafka
import ConduitKit
import ConduitPostgres
import ConduitProtocol
import ConduitRedis
import HTTP
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus
import Redis

/// The public entry point: API keys and tenants; the chat path and the model list passed on to
/// the orchestrator, `/v1/embeddings` to the embedder and `/v1/search` to the retriever, with the
/// caller's identity; `/v1/documents` published as indexing requests for the caller's tenant
/// (rate limits and audit arrive with the security issue).
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_ADMIN_KEY` | none (`make up` generates one); installed at start as the admin key of `CONDUIT_ADMIN_TENANT` |
/// | `CONDUIT_ADMIN_TENANT` | `default` |
/// | `CONDUIT_GATEWAY_RPM_PER_KEY` | 0 (no limit; requests per minute per API key, shared by every replica through Redis) |
/// | `CONDUIT_GATEWAY_CHAT_TIMEOUT_S` | 900 (a chat exchange with the orchestrator, stream included; other routes 60 s) |
/// | `CONDUIT_GATEWAY_INDEXING_TOPIC` | `conduit.indexing.requests` (where `/v1/documents` publishes) |
/// | `CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS` | 1000000 (the embedder's limit, also refused here: 413 `document_too_large`) |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let redis = RedisClient(configuration: try configuration.redis, registry: registry, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: try configuration.kafka), logger: logger)
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let adminKey = configuration.environment.optionalString("CONDUIT_ADMIN_KEY")
    let adminTenant = configuration.environment.string("CONDUIT_ADMIN_TENANT", default: "default")
    guard Identifier.tenant.isValid(adminTenant) else {
        throw ConfigurationError(key: "CONDUIT_ADMIN_TENANT", expected: Identifier.tenant.rule)
    }
    let dependencies = GatewayDependencies(
        keys: PostgresAPIKeyStore(postgres: postgres),
        indexing: KafkaIndexingQueue(
            producer: producer, topic: configuration.environment.string("CONDUIT_GATEWAY_INDEXING_TOPIC", default: KafkaTopic.indexingRequests)),
        services: ServiceClient(http: http, baseURLs: configuration.serviceURLs),
        limiter: RedisRateLimiter(redis: redis),
        readiness: [.postgres(postgres), .redis(redis), .kafka(producer)])
    let router = try buildRouter(configuration: configuration, dependencies: dependencies, registry: registry)
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, redis, producer, http],
        logger: logger,
        beforeServerStarts: [
            { try await migrate(GatewayMigrations.gateway, on: postgres, logger: logger) },
            { try await migrate(GatewayMigrations.audit, on: postgres, logger: logger) },
            {
                guard let adminKey else { return }
                try await APIKeyAuthenticator(store: dependencies.keys).installAdminKey(adminKey, tenant: adminTenant)
                logger.info("admin key installed", metadata: ["tenant": "\(adminTenant)"])
            },
        ]
    )
}

/// What the gateway's routes stand on, as protocols: `buildApplication` gives the real ones
/// (Postgres, Kafka, the internal services over HTTP); the application tests give in-process fakes.
struct GatewayDependencies: Sendable {
    var keys: any APIKeyStore
    var indexing: any IndexingQueue
    var services: any ServiceForwarding
    var limiter: any RateLimiter
    var readiness: [ReadinessCheck] = []
}

func buildRouter(configuration: ServiceConfiguration, dependencies: GatewayDependencies, registry: PrometheusCollectorRegistry) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: dependencies.readiness)
    // Every public route is in this group: authentication belongs to the routes, not to how a
    // path is spelled (`//v1/models` is the same route and needs the same key).
    let api = router.group()
        .add(middleware: AuthenticationMiddleware(authenticator: APIKeyAuthenticator(store: dependencies.keys), keyring: try configuration.requireInternalKeys()))
        .add(middleware: RateLimitMiddleware(
            limiter: dependencies.limiter, requestsPerMinute: try configuration.environment.int("CONDUIT_GATEWAY_RPM_PER_KEY", default: 0), registry: registry))
    ForwardingController(
        services: dependencies.services,
        chatTimeout: .seconds(try configuration.environment.int("CONDUIT_GATEWAY_CHAT_TIMEOUT_S", default: 900))
    ).addRoutes(to: api)
    DocumentsController(
        queue: dependencies.indexing,
        maxDocumentCharacters: try configuration.environment.int("CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS", default: 1_000_000)
    ).addRoutes(to: api)
    return router
}
