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
/// | `CONDUIT_METRICS_MAX_LABEL_VALUES` | 100 (distinct models kept as label values; later ones count as `other`) |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let consumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka,
            groupID: configuration.environment.string("CONDUIT_METRICS_EXPORTER_GROUP", default: "conduit-metrics-exporter"),
            topics: [KafkaTopic.usage, KafkaTopic.audit, KafkaTopic.alerts],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds,
            bufferBytes: try configuration.kafkaConsumerBufferBytes
        ),
        logger: logger
    )
    let registry = PrometheusCollectorRegistry()
    let usage = UsageMetrics(registry: registry, maxLabelValues: try configuration.environment.int("CONDUIT_METRICS_MAX_LABEL_VALUES", default: 100))
    let counter = EventCounter(
        consumer: consumer, registry: registry, usage: usage,
        alerts: AlertMetrics(registry: registry, maxLabelValues: try configuration.environment.int("CONDUIT_METRICS_MAX_LABEL_VALUES", default: 100)),
        logger: logger)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.kafka(consumer)])
    // No routes of its own yet; those to come go in this group, behind the signed identity.
    _ = try router.internalRoutes(configuration)
    return makeConduitApplication(router: router, configuration: configuration, services: [consumer, counter, try ConsumerLagReporter(consumers: [consumer], registry: registry, configuration: configuration)], logger: logger)
}
