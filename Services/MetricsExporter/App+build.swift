import ConduitKafka
import ConduitKit
import ConduitProtocol
import Hummingbird
import Kafka
import Logging
import Prometheus

/// Consumes usage, audit and alert events and exposes them as Prometheus metrics: event counts
/// by topic and kind, and the `llm_*` metrics of usage events (`UsageMetrics`).
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_METRICS_EXPORTER_GROUP` | `conduit-metrics-exporter` (its Kafka consumer group) |
/// | `CONDUIT_METRICS_MAX_LABEL_VALUES` | 100 (distinct models and budgets kept as label values; later ones count as `other`) |
/// | `CONDUIT_METRICS_MAX_TEAMS` | 50 (teams kept as values of `llm_team_cost_dollars_total{team}`; 0 turns that metric off) |
/// | `CONDUIT_METRICS_EXPORTER_USAGE_TOPIC`, `_AUDIT_TOPIC`, `_ALERTS_TOPIC` | `conduit.usage`, `conduit.audit`, `conduit.alerts` |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let topics = EventCounter.Topics(
        usage: environment.string("CONDUIT_METRICS_EXPORTER_USAGE_TOPIC", default: KafkaTopic.usage),
        audit: environment.string("CONDUIT_METRICS_EXPORTER_AUDIT_TOPIC", default: KafkaTopic.audit),
        alerts: environment.string("CONDUIT_METRICS_EXPORTER_ALERTS_TOPIC", default: KafkaTopic.alerts))
    let consumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka,
            groupID: configuration.environment.string("CONDUIT_METRICS_EXPORTER_GROUP", default: "conduit-metrics-exporter"),
            topics: [topics.usage, topics.audit, topics.alerts],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds,
            bufferBytes: try configuration.kafkaConsumerBufferBytes
        ),
        logger: logger
    )
    let registry = PrometheusCollectorRegistry()
    let usage = UsageMetrics(registry: registry, maxLabelValues: try environment.int("CONDUIT_METRICS_MAX_LABEL_VALUES", default: 100),
                             maxTeams: try environment.int("CONDUIT_METRICS_MAX_TEAMS", default: 50))
    let counter = EventCounter(
        consumer: consumer, registry: registry, usage: usage, topics: topics,
        alerts: AlertMetrics(registry: registry, maxLabelValues: try configuration.environment.int("CONDUIT_METRICS_MAX_LABEL_VALUES", default: 100)),
        logger: logger)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.kafka(consumer)])
    // No routes of its own yet; those to come go in this group, behind the signed identity.
    _ = try router.internalRoutes(configuration)
    return makeConduitApplication(router: router, configuration: configuration, services: [consumer, counter, try ConsumerLagReporter(consumers: [consumer], registry: registry, configuration: configuration)], logger: logger)
}
