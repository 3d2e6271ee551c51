import ConduitHTTP
import Foundation
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
/// | `CONDUIT_GATEWAY_RPM_PER_KEY`, `_TPM_PER_KEY`, `_RPM_PER_TENANT`, `_TPM_PER_TENANT`, `_MODEL_LIMITS`, … | no limits; see `RateLimitMiddleware` |
/// | `CONDUIT_JWT_ISSUER`, `_AUDIENCE` | none (JWTs refused); both required to accept bearer JWTs |
/// | `CONDUIT_JWT_JWKS_URL` or `_JWKS_FILE` | the issuer's keys; the URL is fetched again on an unknown `kid` (at most every `CONDUIT_JWT_JWKS_MIN_REFRESH_S`, 30) and every `CONDUIT_JWT_JWKS_REFRESH_S` (300) |
/// | `CONDUIT_JWT_LEEWAY_S` | 60 (clock skew allowed on `exp` and `nbf`) |
/// | `CONDUIT_JWT_TENANT_CLAIM` / `CONDUIT_JWT_TENANT` | `tenant` / none (one tenant for every token) |
/// | `CONDUIT_JWT_ROLES_CLAIM`, `_DEFAULT_ROLE`, `_TEAM_CLAIM`, `_USER_CLAIM` | `roles`, `viewer`, `team`, `sub` |
/// | `CONDUIT_GATEWAY_AUDIT_TOPIC`, `_AUDIT_DLQ_TOPIC`, `_AUDIT_GROUP` | `conduit.audit`, `conduit.audit.dlq`, `conduit-gateway-audit` |
/// | `CONDUIT_GATEWAY_AUDIT_BACKLOG` | 10000 (audit events being sent at once; past it they are dropped and counted) |
/// | `CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY`, `_PER_TENANT` | 0 (no limit; requests in flight per API key / tenant without its own `max_concurrent`, shared through Redis) |
/// | `CONDUIT_GATEWAY_KEY_POLL_MS` | 500 (how often changed keys are read: a revoked key fails everywhere within it) |
/// | `CONDUIT_GATEWAY_KEY_CACHE_S` | 30 (a key's lookup is cached this long at most) |
/// | `CONDUIT_GATEWAY_UNKNOWN_KEY_LOOKUPS_PER_S` | 20 (keys no replica knew at the last poll that may ask Postgres, per second) |
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
    let keyStore = PostgresAPIKeyStore(postgres: postgres)
    let environment = configuration.environment
    let auditLog = AuditLog(postgres: postgres)
    let dependencies = GatewayDependencies(
        keys: keyStore,
        indexing: KafkaIndexingQueue(
            producer: producer, topic: environment.string("CONDUIT_GATEWAY_INDEXING_TOPIC", default: KafkaTopic.indexingRequests)),
        services: ServiceClient(http: http, baseURLs: configuration.serviceURLs),
        limiter: RedisRateLimiter(redis: redis),
        readiness: [.postgres(postgres), .redis(redis), .kafka(producer)],
        audit: KafkaAuditPublisher(
            producer: producer, topic: environment.string("CONDUIT_GATEWAY_AUDIT_TOPIC", default: KafkaTopic.audit),
            limit: try environment.int("CONDUIT_GATEWAY_AUDIT_BACKLOG", default: 10_000), registry: registry, logger: logger),
        administration: keyStore, auditLog: auditLog, directory: PostgresDirectory(postgres: postgres),
        jwt: try makeJWTVerifier(environment, http: http))
    let authenticator = try makeAuthenticator(configuration: configuration, store: dependencies.keys, registry: registry)
    let router = try buildRouter(configuration: configuration, dependencies: dependencies, registry: registry, authenticator: authenticator)
    let watcher = KeyWatcher(
        changes: keyStore, authenticator: authenticator,
        interval: .milliseconds(try configuration.environment.int("CONDUIT_GATEWAY_KEY_POLL_MS", default: 500)), registry: registry, logger: logger)
    let auditConsumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka, groupID: environment.string("CONDUIT_GATEWAY_AUDIT_GROUP", default: "conduit-gateway-audit"),
            topics: [environment.string("CONDUIT_GATEWAY_AUDIT_TOPIC", default: KafkaTopic.audit)],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds, bufferBytes: try configuration.kafkaConsumerBufferBytes),
        logger: logger)
    let sink = AuditSink(
        consumer: auditConsumer, dlq: DeadLetterQueue(producer: producer, topic: environment.string("CONDUIT_GATEWAY_AUDIT_DLQ_TOPIC", default: KafkaTopic.auditDLQ)),
        log: auditLog, registry: registry, logger: logger)
    // The key watcher and the audit sink start once the schemas exist.
    let migrated = StartGate()
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [
            postgres, redis, producer, http, GatedService(watcher, after: migrated), GatedService(auditConsumer, after: migrated),
            GatedService(sink, after: migrated), try ConsumerLagReporter(consumers: [auditConsumer], registry: registry, configuration: configuration),
        ],
        logger: logger,
        beforeServerStarts: [
            { try await migrate(GatewayMigrations.gateway, on: postgres, logger: logger) },
            { try await migrate(GatewayMigrations.audit, on: postgres, logger: logger) },
            {
                guard let adminKey else { return }
                try await APIKeyAuthenticator(store: dependencies.keys).installAdminKey(adminKey, tenant: adminTenant)
                logger.info("admin key installed", metadata: ["tenant": "\(adminTenant)"])
            },
            { migrated.open() },
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
    /// Where admin actions, authentication failures and refusals are reported.
    var audit: (any AuditRecorder)? = nil
    /// The admin API's store of tenants and keys; without it (the application tier) the
    /// `/v1/tenants` and `/v1/keys` routes are not there.
    var administration: (any KeyAdministration)? = nil
    /// The audit trail's reader (`/v1/audit`); the application tier runs without it.
    var auditLog: AuditLog? = nil
    /// Teams and users (`/v1/teams`, `/v1/users`); the application tier runs without them.
    var directory: PostgresDirectory? = nil
    /// Bearer JWTs (`CONDUIT_JWT_*`); nil when no issuer is configured.
    var jwt: JWTVerifier? = nil
}

/// The JWT verifier `CONDUIT_JWT_*` describe, or nil without `CONDUIT_JWT_ISSUER`.
func makeJWTVerifier(_ environment: ConduitEnvironment, http: HTTPClient) throws -> JWTVerifier? {
    guard let issuer = environment.optionalString("CONDUIT_JWT_ISSUER") else { return nil }
    guard let audience = environment.optionalString("CONDUIT_JWT_AUDIENCE") else {
        throw ConfigurationError(key: "CONDUIT_JWT_AUDIENCE", expected: "the audience tokens must name (required with CONDUIT_JWT_ISSUER)")
    }
    let defaultRoleName = environment.string("CONDUIT_JWT_DEFAULT_ROLE", default: Role.viewer.rawValue)
    guard let defaultRole = Role(rawValue: defaultRoleName), defaultRole != .platformAdmin else {
        throw ConfigurationError(key: "CONDUIT_JWT_DEFAULT_ROLE", expected: "admin, developer, viewer or service")
    }
    let fixedTenant = environment.optionalString("CONDUIT_JWT_TENANT")
    if let fixedTenant, !Identifier.tenant.isValid(fixedTenant) {
        throw ConfigurationError(key: "CONDUIT_JWT_TENANT", expected: Identifier.tenant.rule)
    }
    let configuration = JWTVerifier.Configuration(
        issuer: issuer, audience: audience, leeway: Double(try environment.int("CONDUIT_JWT_LEEWAY_S", default: 60)),
        tenantClaim: environment.string("CONDUIT_JWT_TENANT_CLAIM", default: "tenant"), fixedTenant: fixedTenant,
        rolesClaim: environment.string("CONDUIT_JWT_ROLES_CLAIM", default: "roles"), defaultRole: defaultRole,
        teamClaim: environment.string("CONDUIT_JWT_TEAM_CLAIM", default: "team"), userClaim: environment.string("CONDUIT_JWT_USER_CLAIM", default: "sub"),
        minRefresh: .seconds(try environment.int("CONDUIT_JWT_JWKS_MIN_REFRESH_S", default: 30)),
        refresh: .seconds(try environment.int("CONDUIT_JWT_JWKS_REFRESH_S", default: 300)))
    if let url = environment.optionalString("CONDUIT_JWT_JWKS_URL") {
        return JWTVerifier(configuration: configuration) {
            let response = try await http.execute(HTTP.HTTPRequest(url: url, timeout: .seconds(10)))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == 200 else { throw ConfigurationError(key: "CONDUIT_JWT_JWKS_URL", expected: "a JWKS (it answered \(response.status))") }
            return body
        }
    }
    guard let file = environment.optionalString("CONDUIT_JWT_JWKS_FILE") else {
        throw ConfigurationError(key: "CONDUIT_JWT_JWKS_URL", expected: "the issuer's JWKS URL (or CONDUIT_JWT_JWKS_FILE), required with CONDUIT_JWT_ISSUER")
    }
    return JWTVerifier(configuration: configuration) {
        guard let data = FileManager.default.contents(atPath: file) else { throw ConfigurationError(key: "CONDUIT_JWT_JWKS_FILE", expected: "a readable JWKS file") }
        return Array(data)
    }
}

func makeAuthenticator(configuration: ServiceConfiguration, store: any APIKeyStore, registry: PrometheusCollectorRegistry) throws -> APIKeyAuthenticator {
    APIKeyAuthenticator(
        store: store, cacheLifetime: .seconds(try configuration.environment.int("CONDUIT_GATEWAY_KEY_CACHE_S", default: 30)),
        unknownLookupsPerSecond: try configuration.environment.int("CONDUIT_GATEWAY_UNKNOWN_KEY_LOOKUPS_PER_S", default: 20), registry: registry)
}

func buildRouter(
    configuration: ServiceConfiguration, dependencies: GatewayDependencies, registry: PrometheusCollectorRegistry, authenticator: APIKeyAuthenticator? = nil
) throws -> Router<ConduitRequestContext> {
    let authenticator = try authenticator ?? makeAuthenticator(configuration: configuration, store: dependencies.keys, registry: registry)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: dependencies.readiness)
    OpenAPIDocument.addRoute(to: router)
    // Every public route is in this group: authentication belongs to the routes, not to how a
    // path is spelled (`//v1/models` is the same route and needs the same key).
    let api = router.group()
    if let ungoverned = try UngovernedMiddleware(configuration: configuration, registry: registry) {
        // `make bench-governance`'s anchor only: no authentication, limits or audit.
        api.add(middleware: ungoverned)
        try addRoutes(to: api, configuration: configuration, dependencies: dependencies)
        return router
    }
    api.add(middleware: AuthenticationMiddleware(
            authenticator: authenticator, keyring: try configuration.requireInternalKeys(), audit: dependencies.audit, jwt: dependencies.jwt))
        .add(middleware: RateLimitMiddleware(
            limiter: dependencies.limiter, policy: try RateLimitMiddleware.Policy(configuration.environment),
            fallback: LocalRateLimiter(capacity: try configuration.environment.int("CONDUIT_GATEWAY_RATE_LIMIT_LOCAL_BUCKETS", default: 100_000)),
            maxSettles: try configuration.environment.int("CONDUIT_GATEWAY_RATE_LIMIT_SETTLES", default: 10_000), registry: registry))
    if let audit = dependencies.audit { api.add(middleware: AuditMiddleware(audit: audit)) }
    try addRoutes(to: api, configuration: configuration, dependencies: dependencies)
    return router
}

/// The public routes, behind whatever the group in front of them checks.
func addRoutes(to api: RouterGroup<ConduitRequestContext>, configuration: ServiceConfiguration, dependencies: GatewayDependencies) throws {
    let forwarding = ForwardingController(
        services: dependencies.services,
        chatTimeout: .seconds(try configuration.environment.int("CONDUIT_GATEWAY_CHAT_TIMEOUT_S", default: 900))
    )
    forwarding.addRoutes(to: api)
    forwarding.addPromptRoutes(to: api)
    forwarding.addFlowRoutes(to: api)
    DocumentsController(
        queue: dependencies.indexing,
        maxDocumentCharacters: try configuration.environment.int("CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS", default: 1_000_000)
    ).addRoutes(to: api)
    if let administration = dependencies.administration {
        KeysController(store: administration).addRoutes(to: api)
    }
    if let auditLog = dependencies.auditLog {
        AuditController(log: auditLog).addRoutes(to: api)
    }
    if let directory = dependencies.directory {
        DirectoryController(store: directory).addRoutes(to: api)
    }
}
