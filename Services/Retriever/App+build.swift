import ConduitHTTP
import ConduitKafka
import ConduitKit
import ConduitPostgres
import ConduitProtocol
import Foundation
import HTTP
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus
import SearchEngine
import ServiceLifecycle

/// Hybrid search over chunks kept in Postgres and indexed in memory: `conduit.indexing.chunks`
/// in, `/v1/search` and `/v1/collections` out.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_RETRIEVER_GROUP` | `conduit-retriever` (consumer group) |
/// | `CONDUIT_RETRIEVER_CHUNKS_TOPIC` / `_DLQ_TOPIC` | the topics of DESIGN.md |
/// | `CONDUIT_RETRIEVER_EMBEDDING_MODEL` | `all-minilm-l6-v2` (embeds query text) |
/// | `CONDUIT_RETRIEVER_M` / `_EF_CONSTRUCTION` / `_EF_SEARCH` | 16 / 200 / 64 (collections created by indexing) |
/// | `CONDUIT_RETRIEVER_QUANTIZATION` | `none` (or `int8`) |
/// | `CONDUIT_RETRIEVER_SNAPSHOT_DIR` | `.stack/snapshots/retriever` |
/// | `CONDUIT_RETRIEVER_SNAPSHOT_INTERVAL_S` | 300 (and one at shutdown) |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: try configuration.kafka), logger: logger)
    let consumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka,
            groupID: environment.string("CONDUIT_RETRIEVER_GROUP", default: "conduit-retriever"),
            topics: [environment.string("CONDUIT_RETRIEVER_CHUNKS_TOPIC", default: KafkaTopic.indexingChunks)],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds,
            bufferBytes: try configuration.kafkaConsumerBufferBytes
        ),
        logger: logger
    )
    let quantizationName = environment.string("CONDUIT_RETRIEVER_QUANTIZATION", default: "none")
    guard let quantization = VectorIndex.Quantization(rawValue: quantizationName) else {
        throw ConfigurationError(key: "CONDUIT_RETRIEVER_QUANTIZATION", expected: "none or int8")
    }
    let defaults = SearchCollection.Configuration(dimension: 384, vector: .init(
        m: try environment.int("CONDUIT_RETRIEVER_M", default: 16),
        efConstruction: try environment.int("CONDUIT_RETRIEVER_EF_CONSTRUCTION", default: 200),
        efSearch: try environment.int("CONDUIT_RETRIEVER_EF_SEARCH", default: 64),
        quantization: quantization))
    let repository = PostgresChunkRepository(postgres: postgres)
    let engine = EngineExecutor(threads: try environment.int("CONDUIT_ENGINE_THREADS", default: 2))
    let catalog = SearchCatalog()
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let embeddings = EmbedderQueryEmbedding(
        client: ServiceClient(http: http, baseURLs: configuration.serviceURLs),
        defaultModel: environment.string("CONDUIT_RETRIEVER_EMBEDDING_MODEL", default: "all-minilm-l6-v2"))
    let registry = PrometheusCollectorRegistry()
    let chunks = ChunkConsumer(
        consumer: consumer,
        dlq: DeadLetterQueue(producer: producer, topic: environment.string("CONDUIT_RETRIEVER_DLQ_TOPIC", default: KafkaTopic.indexingDLQ)),
        repository: repository, catalog: catalog, defaults: defaults, engine: engine, registry: registry, logger: logger)

    let snapshots = SnapshotStore(
        directory: URL(fileURLWithPath: environment.string("CONDUIT_RETRIEVER_SNAPSHOT_DIR", default: ".stack/snapshots/retriever")),
        interval: .seconds(try environment.int("CONDUIT_RETRIEVER_SNAPSHOT_INTERVAL_S", default: 300)),
        catalog: catalog, logger: logger)

    let router = try buildRouter(
        configuration: configuration,
        dependencies: RetrieverDependencies(
            catalog: catalog, repository: repository, embeddings: embeddings, snapshots: snapshots, engine: engine,
            readiness: [.postgres(postgres), .kafka(producer)]),
        registry: registry)
    // The consumer joins its group only after the indexes are loaded, so events apply on top
    // of them: applied during the load, the loader would replace them with an older state
    // whose offsets were already committed.
    let loaded = StartGate()
    return makeConduitApplication(
        router: router,
        configuration: configuration,
        services: [postgres, producer, http, engine, snapshots, GatedService(consumer, after: loaded), GatedService(chunks, after: loaded),
                   try ConsumerLagReporter(consumers: [consumer], registry: registry, configuration: configuration)],
        logger: logger,
        beforeServerStarts: [
            { try await migrate(RetrieverMigrations.retriever, on: postgres, logger: logger) },
            {
                try await IndexLoader(repository: repository, catalog: catalog, snapshots: snapshots, engine: engine, logger: logger).load()
                loaded.open()
            },
        ]
    )
}

/// What the retriever's routes stand on: the collections in memory, the chunk store
/// (`ChunkRepository`), query embeddings (`QueryEmbedding`), snapshots and the engine threads.
struct RetrieverDependencies: Sendable {
    var catalog: SearchCatalog
    var repository: any ChunkRepository
    var embeddings: any QueryEmbedding
    var snapshots: SnapshotStore
    var engine: EngineExecutor
    var readiness: [ReadinessCheck] = []
}

func buildRouter(configuration: ServiceConfiguration, dependencies: RetrieverDependencies, registry: PrometheusCollectorRegistry) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: dependencies.readiness)
    let routes = try router.internalRoutes(configuration)
    SearchController(catalog: dependencies.catalog, embeddings: dependencies.embeddings, engine: dependencies.engine).addRoutes(to: routes)
    CollectionsController(catalog: dependencies.catalog, repository: dependencies.repository, snapshots: dependencies.snapshots).addRoutes(to: routes)
    return router
}
