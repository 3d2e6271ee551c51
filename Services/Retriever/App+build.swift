import ConduitKit
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus

/// Chunks in Postgres, the in-memory hybrid index, search routes (arrive with the retriever issue).
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: configuration.postgres, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: configuration.kafka), logger: logger)
    let registry = PrometheusCollectorRegistry()
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.postgres(postgres), .kafka(producer)])
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, producer],
        logger: logger,
        beforeServerStarts: [{ try await migrate(RetrieverMigrations.retriever, on: postgres, logger: logger) }]
    )
}
