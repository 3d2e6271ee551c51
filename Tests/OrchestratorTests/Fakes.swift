import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
@testable import Orchestrator
import Prometheus
import Providers
import SemanticCache
import TestSupport

/// In-process stand-ins for what the orchestrator's routes stand on (the application tier:
/// no server is started). The real ones are tested against real servers in
/// OrchestratorStoreTests and the integration tier.
enum Fakes {
    /// A catalog with one model, `tiny`, priced so that costs are easy to check.
    static let catalog = try! ModelCatalog(yaml: """
        models:
          - name: tiny
            owned_by: tests
            deployments:
              - id: tiny-local
                provider: openai
                model: tiny
                base_url: http://127.0.0.1:9/v1
                context_window: 4096
                price_per_million: {input: 1000, output: 2000}
        """)

    /// Routes built over `dependencies`, with the cache off unless `cache` is set.
    static func router(_ dependencies: OrchestratorDependencies, environment: [String: String] = [:]) throws -> Router<ConduitRequestContext> {
        var values = TestIdentity.environment
        values["CONDUIT_CACHE_ENABLED"] = "false"
        values.merge(environment) { $1 }
        let configuration = try ServiceConfiguration(service: .orchestrator, environment: ConduitEnvironment(values))
        return try buildRouter(configuration: configuration, dependencies: dependencies, registry: PrometheusCollectorRegistry(), logger: Logger(label: "orchestrator-app-test"))
    }
}

/// Models that answer in-process. What they do depends on the last user message, as the test
/// upstream in OrchestratorStoreTests does: `fail` (a provider 500), `cut` (a stream that
/// breaks after its first words), `quiet` (no usage reported), `tools` (a tool call), anything
/// else "Hello there" with 9 + 2 tokens, or, when the system prompt holds numbered sources,
/// an answer citing the first.
final class FakeModels: ChatModels {
    let catalog = Fakes.catalog
    private let received = Locked<[ChatCompletionRequest]>([])
    var requests: [ChatCompletionRequest] { received.withLock { $0 } }

    var availableModels: [CatalogModel] { catalog.models }

    func primaryDeployment(for model: String) -> Deployment? { catalog.model(named: model)?.deployments.first }

    private func served(_ request: ChatCompletionRequest) throws -> ProviderRouter.Served {
        guard let model = catalog.model(named: request.model) else { throw RoutingError.unknownModel(request.model) }
        received.withLock { $0.append(request) }
        if request.messages.last?.content?.plainText == "fail" {
            throw ProviderError(.serverError, status: 500, message: "boom", deployment: model.deployments[0].id)
        }
        return .init(model: model.name, deployment: model.deployments[0])
    }

    func complete(_ request: ChatCompletionRequest) async throws -> (ChatCompletion, ProviderRouter.Served) {
        let served = try served(request)
        let message: ChatMessage = request.messages.last?.content?.plainText == "tools"
            ? ChatMessage(role: "assistant", content: nil, toolCalls: [.init(id: "c1", function: .init(name: "search", arguments: "{}"))])
            : request.messages.first.map { $0.role == "system" && ($0.content?.plainText ?? "").contains("[1]") } == true
                ? .assistant("As the sources say [1].") : .assistant("Hello there")
        let completion = ChatCompletion(id: "up-1", created: 1, model: served.model, choices: [.init(index: 0, message: message, finishReason: "stop")],
                                        usage: Usage(promptTokens: 9, completionTokens: 2))
        return (completion, served)
    }

    func stream(_ request: ChatCompletionRequest) async throws -> (ProviderStream, ProviderRouter.Served) {
        let served = try served(request)
        let last = request.messages.last?.content?.plainText ?? ""
        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil) -> ProviderStream.Event {
            .chunk(ChatCompletionChunk(id: "up-1", created: 1, model: served.model, choices: [.init(index: 0, delta: delta, finishReason: finish)]))
        }
        var events: [ProviderStream.Event] = [chunk(.init(role: "assistant", content: ""))]
        var failure: (any Error)?
        switch last {
        case "cut":
            events.append(chunk(.init(content: "Hel")))
            failure = ProviderError(.streamInterrupted, message: "the stream ended before its end marker", deployment: served.deployment.id)
        case "quiet":
            events += [chunk(.init(content: "Twelve chars")), chunk(.init(), finish: "stop"), .finished(nil)]
        default:
            events += [chunk(.init(content: "Hello")), chunk(.init(content: " there")), chunk(.init(), finish: "stop"),
                       .finished(ProviderUsage(promptTokens: 9, completionTokens: 2))]
        }
        let (stream, continuation) = AsyncThrowingStream<ProviderStream.Event, any Error>.makeStream()
        for event in events { continuation.yield(event) }
        continuation.finish(throwing: failure)
        return (ProviderStream(events: stream, producer: Task {}), served)
    }
}

/// Usage events kept to be read back.
final class RecordedUsage: UsageRecorder {
    private let events = Locked<[UsageEvent]>([])
    var recorded: [UsageEvent] { events.withLock { $0 } }
    func record(_ event: UsageEvent) { events.withLock { $0.append(event) } }
}

/// Sessions in a dictionary, with the Redis store's cap and summary rules left out: only what
/// the chat path relies on.
final class InMemorySessionStore: SessionStore {
    private let sessions = Locked<[String: [ChatMessage]]>([:])

    func messages(tenant: String, id: String) -> [ChatMessage] { sessions.withLock { $0["\(tenant)/\(id)"] ?? [] } }

    func load(tenant: String, id: String) async throws -> StoredSession {
        let messages = self.messages(tenant: tenant, id: id)
        return StoredSession(raw: try messages.map { Array(try JSONEncoder().encode($0)) }, messages: messages)
    }

    func append(_ messages: [ChatMessage], tenant: String, id: String) async throws {
        sessions.withLock { $0["\(tenant)/\(id)", default: []] += messages }
    }

    func compact(replacing entries: [[UInt8]], with summary: String, tenant: String, id: String) async throws -> Bool {
        sessions.withLock { sessions in
            guard var messages = sessions["\(tenant)/\(id)"], messages.count >= entries.count else { return false }
            messages.removeFirst(entries.count)
            sessions["\(tenant)/\(id)"] = [ChatMessage(role: "system", content: .text(summary), name: Sessions.summaryName)] + messages
            return true
        }
    }

    func delete(tenant: String, id: String) async throws -> Bool {
        sessions.withLock { $0.removeValue(forKey: "\(tenant)/\(id)") != nil }
    }

    func remainingSeconds(tenant: String, id: String) async throws -> Int? { messages(tenant: tenant, id: id).isEmpty ? nil : 3600 }
}

/// Cached answers in a list: a hit is an entry of the same tenant and context whose vector's
/// cosine similarity passes the threshold.
final class InMemoryAnswerIndex: AnswerIndex {
    struct Entry {
        var tenant: String
        var context: String
        var question: String
        var vector: [Float]
        var payload: [UInt8]
    }
    private let entries = Locked<[Entry]>([])
    var count: Int { entries.withLock { $0.count } }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        let dot = zip(a, b).reduce(0) { $0 + Double($1.0 * $1.1) }
        let norms = (a.reduce(0) { $0 + Double($1 * $1) } * b.reduce(0) { $0 + Double($1 * $1) }).squareRoot()
        return norms == 0 ? 0 : dot / norms
    }

    func lookup(tenant: String, context: String, question: String, vector: [Float], threshold: Double) async throws -> SemanticCache.Lookup {
        let scored = entries.withLock { entries in
            entries.filter { $0.tenant == tenant && $0.context == context }.map { ($0, Self.cosine($0.vector, vector)) }.max { $0.1 < $1.1 }
        }
        guard let (entry, similarity) = scored else { return .miss(similarity: nil, rejection: nil) }
        guard similarity >= threshold else { return .miss(similarity: similarity, rejection: nil) }
        return .hit(.init(payload: entry.payload, similarity: similarity, question: entry.question))
    }

    func store(tenant: String, context: String, question: String, vector: [Float], payload: [UInt8]) async throws {
        entries.withLock { $0.append(Entry(tenant: tenant, context: context, question: question, vector: vector, payload: payload)) }
    }

    func purge(tenant: String) async throws -> Int {
        entries.withLock { entries in
            let before = entries.count
            entries.removeAll { $0.tenant == tenant }
            return before - entries.count
        }
    }
}

/// The embedder and retriever: embeddings are letter counts (so questions with the same
/// letters are identical to the cache), searches return the chunks given, per collection.
final class FakeServices: InternalServices {
    let chunks: [String: [RetrievedChunk]]
    private let searches = Locked<[(collection: String, query: String, tenant: String)]>([])
    var searched: [(collection: String, query: String, tenant: String)] { searches.withLock { $0 } }

    init(chunks: [String: [RetrievedChunk]] = [:]) { self.chunks = chunks }

    func search(_ options: RAGOptions, query: String, tenant: String, context: ConduitRequestContext) async throws -> [RetrievedChunk] {
        searches.withLock { $0.append((options.collection, query, tenant)) }
        guard let found = chunks[options.collection] else {
            throw APIError(status: .notFound, type: .invalidRequest, message: "No collection '\(options.collection)'.", param: "conduit.rag.collection", code: "collection_not_found")
        }
        return found
    }

    func embed(_ text: String, tenant: String, context: ConduitRequestContext) async throws -> [Float] {
        var counts = [Float](repeating: 0, count: 26)
        for scalar in text.lowercased().unicodeScalars where ("a"..."z").contains(scalar) { counts[Int(scalar.value - 97)] += 1 }
        return counts
    }
}

/// Never asked: the fake catalog's deployment has no tokenizer.
struct NoTokenizer: Tokenizer {
    func count(_ text: String, deployment: Deployment) async -> Int? { nil }
}

extension OrchestratorDependencies {
    static func fakes(models: FakeModels = FakeModels(), usage: RecordedUsage = RecordedUsage(), sessions: InMemorySessionStore = InMemorySessionStore(),
                      answers: InMemoryAnswerIndex = InMemoryAnswerIndex(), services: FakeServices = FakeServices()) -> OrchestratorDependencies {
        OrchestratorDependencies(models: models, usage: usage, sessions: sessions, answers: answers, services: services, tokenizer: NoTokenizer())
    }
}
