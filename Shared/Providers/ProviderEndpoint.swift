import ConduitProtocol
import Foundation
import HTTP

/// Where an operation of a deployment is addressed and how it is keyed, for the families that
/// share OpenAI's API: OpenAI-compatible servers (`{base}/{operation}`, `Authorization: Bearer`)
/// and Azure OpenAI (`{base}/openai/deployments/{deployment}/{operation}?api-version=…`,
/// `api-key`). The chat adapters and the embedder's remote models both go through it.
public enum ProviderEndpoint {
    /// Azure's API version when the deployment names none.
    public static let defaultAzureAPIVersion = "2024-10-21"

    public enum Operation: String, Sendable {
        case chatCompletions = "chat/completions"
        case embeddings
    }

    /// The URL and the key's headers; nil for a family without this API (Anthropic, Gemini).
    public static func address(_ operation: Operation, of deployment: Deployment, apiKey: String?) -> (url: String, headers: [(name: String, value: String)])? {
        switch deployment.provider {
        case .openAI:
            return (deployment.baseURL + "/" + operation.rawValue, apiKey.map { [("Authorization", "Bearer \($0)")] } ?? [])
        case .azureOpenAI:
            let name = deployment.upstreamModel.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? deployment.upstreamModel
            let version = deployment.apiVersion ?? defaultAzureAPIVersion
            return ("\(deployment.baseURL)/openai/deployments/\(name)/\(operation.rawValue)?api-version=\(version)",
                    apiKey.map { [("api-key", $0)] } ?? [])
        case .anthropic, .gemini:
            return nil
        }
    }

    /// An embeddings request for `deployment`: the body with the deployment's model name.
    public static func embeddings(_ request: EmbeddingsRequest, for deployment: Deployment, keys: APIKeys, timeout: Duration) throws -> HTTPRequest {
        guard let (url, headers) = address(.embeddings, of: deployment, apiKey: keys.key(for: deployment)) else {
            throw ProviderError(.badRequest, message: "\(deployment.provider.rawValue) deployments have no embeddings API", deployment: deployment.id)
        }
        var upstream = request
        upstream.model = deployment.upstreamModel
        return HTTPRequest(method: "POST", url: url, headers: headers + [("Content-Type", "application/json")],
                           body: Array(try JSONEncoder().encode(upstream)), timeout: timeout)
    }
}
