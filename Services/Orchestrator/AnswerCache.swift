import ConduitKit
import ConduitProtocol
import Crypto
import Foundation
import Logging
import Prometheus
import SemanticCache
import Synchronization

/// The orchestrator's use of the semantic cache: which requests may use it, the exact context a
/// hit must share, the question's embedding (from the embedder), and the metrics.
///
/// The context is everything but the wording of the last user message: tenant (the key
/// prefix), model, sampling parameters, tools, response format, RAG settings and every earlier
/// message, system prompt and session history included, hashed with SHA-256.
final class AnswerCache: Sendable {
    struct Configuration: Sendable {
        var enabled = true
        /// Similarity a hit needs when neither the model nor the tenant sets one. Default 0.95.
        var threshold = 0.95
        /// Per-tenant thresholds (`CONDUIT_CACHE_TENANT_THRESHOLDS="acme=0.97,beta=0.9"`).
        var tenantThresholds: [String: Double] = [:]
        /// Requests sampled hotter than this are not cached. A request without `temperature`
        /// counts as OpenAI's default, 1.0. Default 1.0.
        var maxTemperature = 1.0
    }

    let cache: any AnswerIndex
    let services: any InternalServices
    let configuration: Configuration
    let metrics: Metrics
    let logger: Logger
    private let pausedUntil = Mutex<ContinuousClock.Instant?>(nil)
    static let pauseAfterEmbedderFailure: Duration = .seconds(10)

    init(cache: any AnswerIndex, services: any InternalServices, configuration: Configuration, metrics: Metrics, logger: Logger) {
        self.cache = cache
        self.services = services
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    struct Key: Sendable {
        var tenant: String
        var context: String
        var question: String
        var vector: [Float]
        var threshold: Double
    }

    /// Why a request does not use the cache, or nil when it may.
    func bypassReason(_ body: ChatCompletionRequest, options: ConduitOptions?) -> String? {
        Self.bypassReason(body, options: options, configuration: configuration)
    }

    static func bypassReason(_ body: ChatCompletionRequest, options: ConduitOptions?, configuration: Configuration) -> String? {
        if !configuration.enabled { return "disabled" }
        if options?.cache == false { return "request" }
        if (body.n ?? 1) != 1 { return "n" }
        if (body.temperature ?? 1.0) > configuration.maxTemperature { return "temperature" }
        guard let last = body.messages.last, last.role == "user", case .text? = last.content else { return "last message" }
        return nil
    }

    /// The key for a request whose model-bound messages are `messages`; nil when the embedder
    /// cannot be reached (the request then goes on uncached).
    func key(for body: ChatCompletionRequest, messages: [ChatMessage], rag: RAGOptions?, tenant: String, modelThreshold: Double?, context: ConduitRequestContext) async -> Key? {
        guard let question = messages.last?.content?.plainText, !question.isEmpty else { return nil }
        if let until = pausedUntil.withLock({ $0 }), ContinuousClock.now < until { return nil }
        do {
            let vector = try await services.embed(question, tenant: tenant, context: context)
            let threshold = configuration.tenantThresholds[tenant] ?? modelThreshold ?? configuration.threshold
            return Key(tenant: tenant, context: Self.contextHash(body, earlier: messages.dropLast(), rag: rag), question: question, vector: vector, threshold: threshold)
        } catch {
            // Without the embedder the cache steps aside for a while instead of failing (and
            // logging) on every request.
            pausedUntil.withLock { $0 = .now + Self.pauseAfterEmbedderFailure }
            logger.warning("semantic cache paused: the embedder did not answer", metadata: [
                LogKey.error: "\(error)", "seconds": "\(Self.pauseAfterEmbedderFailure.components.seconds)"])
            return nil
        }
    }

    struct Outcome: Sendable {
        /// The cached answer, on a hit.
        var completion: ChatCompletion?
        /// The hit's similarity, or on a miss the nearest entry's.
        var similarity: Double?
    }

    func lookup(_ key: Key) async -> Outcome {
        var nearest: Double?
        do {
            switch try await cache.lookup(tenant: key.tenant, context: key.context, question: key.question, vector: key.vector, threshold: key.threshold) {
            case .hit(let hit):
                if let completion = try? JSONDecoder().decode(ChatCompletion.self, from: Data(hit.payload)) {
                    metrics.hit(similarity: hit.similarity)
                    return Outcome(completion: completion, similarity: hit.similarity)
                }
            case .miss(let similarity, let rejection):
                nearest = similarity
                if let rejection { logger.info("semantic cache guard refused a hit", metadata: ["reason": "\(rejection)"]) }
            }
        } catch {
            logger.warning("semantic cache lookup failed", metadata: [LogKey.error: "\(error)"])
        }
        metrics.miss()
        return Outcome(completion: nil, similarity: nearest)
    }

    /// Stores a successful plain-text answer; tool calls, filtered or empty answers are not kept.
    func store(_ completion: ChatCompletion, key: Key) async {
        guard Self.storable(completion) else { return }
        do {
            try await cache.store(tenant: key.tenant, context: key.context, question: key.question, vector: key.vector, payload: try WireCoding.encode(completion))
        } catch {
            logger.warning("semantic cache store failed", metadata: [LogKey.error: "\(error)"])
        }
    }

    /// One plain-text answer that ended normally: no tool calls, no content filter, not empty.
    static func storable(_ completion: ChatCompletion) -> Bool {
        guard completion.choices.count == 1, let choice = completion.choices.first,
              choice.message.toolCalls?.isEmpty ?? true, choice.finishReason == "stop" || choice.finishReason == "length",
              let text = choice.message.content?.plainText, !text.isEmpty else { return false }
        return true
    }

    static func contextHash(_ body: ChatCompletionRequest, earlier: ArraySlice<ChatMessage>, rag: RAGOptions?) -> String {
        var context = body
        context.messages = Array(earlier)
        context.stream = nil
        context.streamOptions = nil
        context.user = nil
        context.metadata = nil
        context.store = nil
        context.conduit = ConduitOptions(rag: rag)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = (try? encoder.encode(context)) ?? Data()
        return SHA256.hash(data: bytes).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Every series carries HELP and TYPE from the first scrape: the miss counter exists from
    /// the start, and each hit range gets the same help text whenever it first appears.
    struct Metrics: Sendable {
        let registry: PrometheusCollectorRegistry
        static let hitsHelp = "Answers served from the semantic cache, by the similarity of the cached question."

        init(registry: PrometheusCollectorRegistry) {
            self.registry = registry
            _ = registry.makeCounter(name: "semantic_cache_misses_total", help: Self.missesHelp)
        }

        static let missesHelp = "Cache lookups that found no answer close enough."

        func hit(similarity: Double) {
            registry.makeCounter(name: "semantic_cache_hits_total", labels: [("similarity_range", Self.range(similarity))], help: Self.hitsHelp).increment()
        }

        func miss() {
            registry.makeCounter(name: "semantic_cache_misses_total", help: Self.missesHelp).increment()
        }

        /// `0.95-0.96` … `0.99-1.00`; below 0.95 in steps of 0.05.
        static func range(_ similarity: Double) -> String {
            let clamped = min(max(similarity, 0), 0.9999)
            let step = clamped >= 0.95 ? 0.01 : 0.05
            let low = (clamped / step).rounded(.down) * step
            return String(format: "%.2f-%.2f", low, low + step)
        }
    }
}
