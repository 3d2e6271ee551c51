import Budgets
import ConduitHTTP
import ConduitKafka
import ConduitKit
import ConduitProtocol
import ConduitPostgres
import ConduitRedis
import Hummingbird
import Kafka
import Foundation
import HTTP
import Logging
import Postgres
import Prometheus
import Redis

/// Budgets, the usage ledger and live spend counters: the ledger, consumed from `conduit.usage`;
/// `GET /v1/usage` over its rollups; `/v1/budgets`, whose counters in Redis the orchestrator
/// reserves against and the reconciler keeps level with the ledger, raising alerts.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_COST_SERVICE_GROUP` | `conduit-cost-service` (its Kafka consumer group) |
/// | `CONDUIT_COST_SERVICE_USAGE_TOPIC` / `_DLQ_TOPIC` | `conduit.usage` / `conduit.usage.dlq` |
/// | `CONDUIT_COST_SERVICE_ALERTS_TOPIC` | `conduit.alerts` |
/// | `CONDUIT_COST_SERVICE_LEDGER_CONCURRENCY` | 8 (usage events recorded at once; at most the Postgres pool's size is useful) |
/// | `CONDUIT_BUDGET_TIME_ZONE` | `UTC` (the calendar of a budget created without `time_zone`) |
/// | `CONDUIT_BUDGETS_PER_TENANT` | 1000 |
/// | `CONDUIT_BUDGET_RECONCILE_S` | 10 (counters against the ledger, alerts) |
/// | `CONDUIT_BUDGET_WEBHOOK_SECRET` | none: budgets' webhooks are not called without it |
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
        ledger: PostgresUsageLedger(postgres: postgres), metrics: .init(registry: registry), logger: logger,
        concurrency: try environment.int("CONDUIT_COST_SERVICE_LEDGER_CONCURRENCY", default: 8))
    let accounts = BudgetAccounts(store: PostgresBudgetStore(postgres: postgres), counters: BudgetCounters(redis: redis), now: { Date() })
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let alertsTopic = environment.string("CONDUIT_COST_SERVICE_ALERTS_TOPIC", default: KafkaTopic.alerts)
    let reconciler = BudgetReconciler(
        accounts: accounts,
        alerts: BudgetAlerts(
            store: accounts.store,
            publish: { event in _ = try await producer.send(topic: alertsTopic, key: event.budgetID, value: Array(try EventCoding.encoder().encode(event))) },
            webhook: environment.optionalString("CONDUIT_BUDGET_WEBHOOK_SECRET").map { BudgetWebhook(http: http, secret: $0, registry: registry, logger: logger) },
            registry: registry, logger: logger),
        interval: .seconds(try environment.int("CONDUIT_BUDGET_RECONCILE_S", default: 10)), registry: registry, logger: logger)
    let budgets = BudgetController(
        accounts: accounts, maxPerTenant: try environment.int("CONDUIT_BUDGETS_PER_TENANT", default: 1000),
        defaultTimeZone: try budgetTimeZone(environment))
    let router = try buildRouter(
        configuration: configuration, report: PostgresUsageReport(postgres: postgres), budgets: budgets, registry: registry,
        readiness: [.postgres(postgres), .redis(redis), .kafka(producer)])
    // The consumer joins its group once the ledger's tables exist.
    let migrated = StartGate()
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [
            postgres, redis, producer, http, GatedService(consumer, after: migrated), GatedService(ledger, after: migrated),
            GatedService(reconciler, after: migrated), try ConsumerLagReporter(consumers: [consumer], registry: registry, configuration: configuration),
        ],
        logger: logger,
        beforeServerStarts: [{
            try await migrate(CostMigrations.cost, on: postgres, logger: logger)
            migrated.open()
        }]
    )
}

/// The routes, behind the signed identity: `GET /v1/usage` over the usage report, the budgets.
func buildRouter(configuration: ServiceConfiguration, report: any UsageReport, budgets: BudgetController, registry: PrometheusCollectorRegistry,
                 readiness: [ReadinessCheck] = []) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: readiness)
    let routes = try router.internalRoutes(configuration)
    UsageController(report: report).addRoutes(to: routes)
    budgets.addRoutes(to: routes)
    return router
}

/// `CONDUIT_BUDGET_TIME_ZONE`, checked.
func budgetTimeZone(_ environment: ConduitEnvironment) throws -> String {
    let zone = environment.string("CONDUIT_BUDGET_TIME_ZONE", default: "UTC")
    guard TimeZone(identifier: zone) != nil else {
        throw ConfigurationError(key: "CONDUIT_BUDGET_TIME_ZONE", expected: "an IANA time zone such as Europe/Paris")
    }
    return zone
}
