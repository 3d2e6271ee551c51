import ConduitProtocol
import Providers

/// The models the chat path calls: `ProviderRouter` (the catalog's deployments over HTTP, with
/// retries, fallback and circuit breaking); an application test answers in-process.
protocol ChatModels: Sendable {
    var catalog: ModelCatalog { get }
    /// The models a caller can use now.
    var availableModels: [CatalogModel] { get }
    /// The deployment a request for `model` is expected to reach: its context window and tokenizer.
    func primaryDeployment(for model: String) -> Deployment?
    func complete(_ request: ChatCompletionRequest) async throws -> (ChatCompletion, ProviderRouter.Served)
    /// Returns when the stream has produced its first chunk.
    func stream(_ request: ChatCompletionRequest) async throws -> (ProviderStream, ProviderRouter.Served)
}

extension ProviderRouter: ChatModels {
    func primaryDeployment(for model: String) -> Deployment? {
        catalog.route(for: model, keys: client.keys).first?.deployment
    }
}
