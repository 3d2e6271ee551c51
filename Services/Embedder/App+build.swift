import ConduitKit
import Hummingbird
import Kafka
import Logging
import Prometheus

/// Embeddings API and the indexing pipeline's embedding stage (arrive with the embedder issue).
/// It does not consume `conduit.indexing.requests` yet, so nothing is committed before it can be processed.
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let producer = KafkaProducer(configuration: .init(kafka: configuration.kafka), logger: logger)
    let registry = PrometheusCollectorRegistry()
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.kafka(producer)])
    return makeConduitApplication(router: router, configuration: configuration, services: [producer], logger: logger)
}
