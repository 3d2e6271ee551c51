import ConduitKit
import HTTP
import Hummingbird
import Kafka
import Logging
import Prometheus
import Redis

/// The chat pipeline (sessions and semantic cache in Redis, provider calls over libcurl,
/// usage events to Kafka); its routes arrive with the chat-path issue.
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let redis = RedisClient(configuration: configuration.redis, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: configuration.kafka), logger: logger)
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.redis(redis), .kafka(producer)])
    return makeConduitApplication(router: router, configuration: configuration, services: [redis, producer, http], logger: logger)
}
