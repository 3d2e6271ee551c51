import ConduitKafka
import ConduitKit
import ConduitProtocol
import Hummingbird
import Kafka
import Logging
import Prometheus

/// Consumes usage, audit and alert events and exposes them as Prometheus metrics.
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
    let counter = EventCounter(consumer: consumer, registry: registry, logger: logger)
    let router = try buildRouter(configuration: configuration, registry: registry, readiness: [.kafka(consumer)])
    return makeConduitApplication(router: router, configuration: configuration, services: [consumer, counter], logger: logger)
}

/// The routes: health and metrics for now; those to come go in the internal group, behind the
/// signed identity, over the stores they need as protocols.
func buildRouter(configuration: ServiceConfiguration, registry: PrometheusCollectorRegistry, readiness: [ReadinessCheck] = []) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: readiness)
    _ = try router.internalRoutes(configuration)
    return router
}
