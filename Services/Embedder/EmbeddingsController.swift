import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import Hummingbird
import TextEmbedding

/// `POST /v1/embeddings` (OpenAI-compatible) and `GET /v1/models`, served by the native engine.
struct EmbeddingsController: Sendable {
    struct Limits: Sendable {
        /// Inputs in one request at most. Default 2048 (OpenAI's limit).
        var maxInputs = 2048
        /// Tokens in one input at most before it is refused; longer than the model's 256 is
        /// truncated as sentence-transformers does. Default 8192.
        var maxInputTokens = 8192
        /// Tokens embedded for one request at most, after truncation. Default 524,288 (2,048
        /// inputs of 256 tokens: the largest request the other limits allow).
        var maxRequestTokens = 524_288
    }

    static let modelID = "all-minilm-l6-v2"
    static let aliases: Set<String> = [modelID, "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"]

    let batcher: EmbeddingBatcher
    let tokenizer: WordPieceTokenizer
    let limits: Limits
    let remote: RemoteEmbeddings
    /// One usage event per request (kind `embedding`), for the caller's tenant.
    let usage: any UsageRecorder
    /// Tokenizing up to 2,048 inputs and encoding their vectors as JSON run here, off the
    /// cooperative pool.
    let engine: EngineExecutor
    let maxSequenceLength = 256

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/embeddings") { request, context in
            try await embeddings(request: request, context: context)
        }
        router.get("/v1/models") { _, _ in
            try jsonResponse(ModelList(data: [.init(id: Self.modelID, created: 1_700_000_000, ownedBy: "conduit")]
                + remote.models.keys.sorted().map { .init(id: $0, created: 1_700_000_000, ownedBy: "remote") }))
        }
    }

    func embeddings(request: Request, context: ConduitRequestContext) async throws -> Response {
        let caller = try context.caller()
        let started = ContinuousClock.now
        let body = try await request.decodeJSON(EmbeddingsRequest.self, context: context)
        if remote.serves(body.model) {
            _ = try tokenizeLimitsOnly(body.input)
            // The provider gets the request id for its logs, never the signed identity.
            var response = try await remote.embed(body, headers: [(ConduitHeader.requestID, context.requestID)])
            record(caller, context: context, model: body.model, provider: "remote", tokens: response.usage.promptTokens, started: started)
            // Re-encode in the format the caller asked for, whatever the provider sent.
            let format = body.encodingFormat ?? .float
            response.data = response.data.map { item in
                var item = item
                if let floats = item.embedding.floats { item.embedding = EmbeddingVector(floats, format: format) }
                return item
            }
            return try jsonResponse(response)
        }
        guard Self.aliases.contains(body.model) else {
            throw APIError(status: .notFound, type: .invalidRequest, message: "The model '\(body.model)' does not exist; this embedder serves '\(Self.modelID)'.", param: "model", code: "model_not_found")
        }
        if let dimensions = body.dimensions, dimensions != MiniLMModel.hidden {
            throw APIError.invalidRequest("'\(Self.modelID)' produces \(MiniLMModel.hidden) dimensions; 'dimensions' cannot be \(dimensions).", param: "dimensions")
        }
        let controller = self
        let input = body.input
        let sequences = try await engine.run { try controller.tokenize(input) }
        let total = sequences.reduce(0) { $0 + $1.count }
        guard total <= limits.maxRequestTokens else {
            throw APIError.invalidRequest("'input' has \(total) tokens in all; at most \(limits.maxRequestTokens) are embedded per request (CONDUIT_EMBEDDER_MAX_REQUEST_TOKENS). Split it into smaller requests.", param: "input", code: "too_many_tokens")
        }
        let vectors: [[Float]]
        do {
            vectors = try await batcher.embed(sequences)
        } catch is EmbeddingBatcher.Overloaded {
            throw APIError(status: .tooManyRequests, type: .rateLimit, message: "The embedder is at capacity; retry shortly.", code: "queue_full")
        } catch is EmbeddingBatcher.ShutDown {
            throw APIError.serviceUnavailable("The embedder is shutting down.")
        }
        let format = body.encodingFormat ?? .float
        let response = try await engine.run {
            try jsonResponse(EmbeddingsResponse(
                data: vectors.enumerated().map { Embedding(index: $0.offset, embedding: EmbeddingVector($0.element, format: format)) },
                model: Self.modelID,
                usage: EmbeddingsUsage(promptTokens: total)
            ))
        }
        record(caller, context: context, model: Self.modelID, provider: "conduit", tokens: total, started: started)
        return response
    }

    private func record(_ caller: CallerIdentity, context: ConduitRequestContext, model: String, provider: String, tokens: Int, started: ContinuousClock.Instant) {
        var event = UsageEvent(requestID: context.requestID, tenant: caller.tenant, kind: "embedding", model: model,
                               promptTokens: tokens, completionTokens: 0, status: "ok", timestamp: Date())
        event.attribute(to: caller, user: nil)
        event.servedModel = model
        event.provider = provider
        // The native model costs nothing per token; remote prices arrive with the cost service.
        event.costUSD = provider == "conduit" ? 0 : nil
        let elapsed = ContinuousClock.now - started
        event.latencyMilliseconds = Int(elapsed.components.seconds) * 1000 + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        usage.record(event)
    }

    /// The per-request input count limit, for models whose tokens are counted by the provider.
    func tokenizeLimitsOnly(_ input: EmbeddingInput) throws -> Int {
        guard input.count > 0 else { throw APIError.invalidRequest("'input' must not be empty.", param: "input") }
        guard input.count <= limits.maxInputs else {
            throw APIError.invalidRequest("'input' has \(input.count) items; at most \(limits.maxInputs) are allowed per request.", param: "input")
        }
        return input.count
    }

    /// Token sequences (`[CLS] … [SEP]`) for every input, or a 400 naming the bad one.
    func tokenize(_ input: EmbeddingInput) throws -> [[Int]] {
        _ = try tokenizeLimitsOnly(input)
        switch input {
        case .text(let text):
            return [try encode(text, param: "input")]
        case .texts(let texts):
            return try texts.enumerated().map { try encode($0.element, param: "input[\($0.offset)]") }
        case .tokens(let ids):
            return [try wrap(ids, param: "input")]
        case .tokenArrays(let arrays):
            return try arrays.enumerated().map { try wrap($0.element, param: "input[\($0.offset)]") }
        }
    }

    private func encode(_ text: String, param: String) throws -> [Int] {
        guard !text.isEmpty else { throw APIError.invalidRequest("'\(param)' must not be an empty string.", param: param) }
        let pieces = tokenizer.wordPieces(text)
        guard pieces.count <= limits.maxInputTokens else {
            throw APIError.invalidRequest("'\(param)' has \(pieces.count) tokens; at most \(limits.maxInputTokens) are allowed per input.", param: param)
        }
        return WordPieceTokenizer.sequence(pieces, maxLength: maxSequenceLength)
    }

    /// Token-id input is taken as this model's WordPiece ids.
    private func wrap(_ ids: [Int], param: String) throws -> [Int] {
        guard !ids.isEmpty else { throw APIError.invalidRequest("'\(param)' must not be an empty token array.", param: param) }
        guard ids.count <= limits.maxInputTokens else {
            throw APIError.invalidRequest("'\(param)' has \(ids.count) tokens; at most \(limits.maxInputTokens) are allowed per input.", param: param)
        }
        guard ids.allSatisfy({ $0 >= 0 && $0 < tokenizer.vocabularySize }) else {
            throw APIError.invalidRequest("'\(param)' contains token ids outside 0..<\(tokenizer.vocabularySize).", param: param)
        }
        return WordPieceTokenizer.sequence(ids, maxLength: maxSequenceLength)
    }
}
