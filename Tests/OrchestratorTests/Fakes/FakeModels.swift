import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
@testable import Orchestrator
import Prometheus
import Providers
import Routing
import SemanticCache
import TestSupport

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
    var availableRouters: [RouterModel] { catalog.routers }
    /// Models whose circuits the test has opened.
    let openCircuits = Locked<Set<String>>([])

    func selectionCandidate(_ model: String) -> ModelSelector.Candidate {
        .init(model: model, deployment: catalog.model(named: model)?.deployments.first, healthy: !openCircuits.withLock { $0.contains(model) })
    }

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
