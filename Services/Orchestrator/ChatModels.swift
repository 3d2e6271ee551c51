import ConduitProtocol
import Providers
import Routing

/// The models the chat path calls: `ProviderRouter` (the catalog's deployments over HTTP, with
/// retries, fallback and circuit breaking); an application test answers in-process.
protocol ChatModels: Sendable {
    var catalog: ModelCatalog { get }
    /// The models a caller can use now.
    var availableModels: [CatalogModel] { get }
    /// The routers (`auto`) a caller can use now.
    var availableRouters: [RouterModel] { get }
    /// The deployment a request for `model` is expected to reach: its context window and tokenizer.
    func primaryDeployment(for model: String) -> Deployment?
    func complete(_ request: ChatCompletionRequest) async throws -> (ChatCompletion, ProviderRouter.Served)
    /// Returns when the stream has produced its first chunk.
    func stream(_ request: ChatCompletionRequest) async throws -> (ProviderStream, ProviderRouter.Served)
    /// A router's candidate as it stands now: the deployment it would be served by and whether
    /// any of its configured deployments has its circuit closed.
    func selectionCandidate(_ model: String) -> ModelSelector.Candidate
}

extension ProviderRouter: ChatModels {
    func primaryDeployment(for model: String) -> Deployment? {
        catalog.route(for: model, keys: client.keys).first?.deployment
    }

    var availableRouters: [RouterModel] { catalog.availableRouters(keys: client.keys) }

    func selectionCandidate(_ model: String) -> ModelSelector.Candidate {
        let (deployment, healthy) = availability(of: model)
        return ModelSelector.Candidate(model: model, deployment: deployment, healthy: healthy)
    }
}
