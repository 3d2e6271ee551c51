import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes
import Providers

/// Embedding models served by a remote provider, by public model name: OpenAI and any
/// OpenAI-compatible `/v1/embeddings` server (Ollama, vLLM, llama.cpp), or Azure OpenAI.
///
/// Configured with `CONDUIT_EMBEDDER_REMOTE_MODELS`, a JSON array, e.g.
/// `[{"name":"text-embedding-3-small","kind":"openai","base_url":"https://api.openai.com/v1","api_key_env":"OPENAI_API_KEY"},
///   {"name":"ada-azure","kind":"azure","base_url":"https://r.openai.azure.com","deployment":"ada","api_version":"2024-02-01","api_key_env":"AZURE_OPENAI_KEY"}]`.
/// Keys are read from the named variables, never from the JSON itself. Each entry becomes a
/// catalog `Deployment`, addressed and keyed by `ProviderEndpoint` as the chat path's are.
struct RemoteEmbeddings: Sendable {
    struct Model: Decodable, Sendable {
        enum Kind: String, Decodable, Sendable {
            case openai
            case azure
        }

        var name: String
        var kind: Kind
        var baseURL: String
        /// The provider's model name (OpenAI-compatible); defaults to `name`.
        var model: String?
        var deployment: String?
        var apiVersion: String?
        var apiKeyEnv: String?

        /// The catalog deployment this entry describes (its id is the public name).
        var catalogDeployment: Deployment {
            switch kind {
            case .openai:
                Deployment(id: name, provider: .openAI, upstreamModel: model ?? name, baseURL: Self.trimmed(baseURL), apiKeyVariable: apiKeyEnv)
            case .azure:
                Deployment(id: name, provider: .azureOpenAI, upstreamModel: self.deployment ?? name, baseURL: Self.trimmed(baseURL),
                           apiKeyVariable: apiKeyEnv, apiVersion: apiVersion)
            }
        }

        static func trimmed(_ url: String) -> String { url.hasSuffix("/") ? String(url.dropLast()) : url }

        enum CodingKeys: String, CodingKey {
            case name, kind, model, deployment
            case baseURL = "base_url"
            case apiVersion = "api_version"
            case apiKeyEnv = "api_key_env"
        }
    }

    let http: HTTPClient
    /// Each remote model's deployment, by public name.
    let models: [String: Deployment]
    let keys: APIKeys
    var timeout: Duration = .seconds(30)

    init(http: HTTPClient, environment: ConduitEnvironment) throws {
        self.http = http
        keys = APIKeys(environment: environment.values)
        guard let text = environment.optionalString("CONDUIT_EMBEDDER_REMOTE_MODELS") else {
            models = [:]
            return
        }
        do {
            let list = try JSONDecoder().decode([Model].self, from: Data(text.utf8))
            for model in list where model.kind == .azure && (model.deployment == nil || model.apiVersion == nil) {
                throw ConfigurationError(key: "CONDUIT_EMBEDDER_REMOTE_MODELS", expected: "a deployment and api_version for Azure model '\(model.name)'")
            }
            models = Dictionary(list.map { ($0.name, $0.catalogDeployment) }) { first, _ in first }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(key: "CONDUIT_EMBEDDER_REMOTE_MODELS", expected: "a JSON array of {name, kind, base_url, …}")
        }
    }

    func serves(_ name: String) -> Bool { models[name] != nil }

    /// Forwards the request and returns the provider's embeddings under the public model name.
    func embed(_ request: EmbeddingsRequest, headers: [(name: String, value: String)]) async throws -> EmbeddingsResponse {
        guard let deployment = models[request.model] else { throw APIError.notFound("Unknown model.") }
        var outbound = try ProviderEndpoint.embeddings(request, for: deployment, keys: keys, timeout: timeout)
        outbound.headers = headers + outbound.headers
        let response: HTTP.HTTPResponse
        let body: [UInt8]
        do {
            response = try await http.execute(outbound)
            body = try await response.body.collect(upTo: 64 << 20)
        } catch let error as HTTPClientError {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedding provider for '\(deployment.id)' could not be reached (\(error.code)).", code: "upstream_unreachable")
        }
        guard (200..<300).contains(response.status) else {
            throw Self.upstreamError(status: response.status, body: body, model: deployment.id)
        }
        guard var decoded = try? JSONDecoder().decode(EmbeddingsResponse.self, from: Data(body)) else {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedding provider for '\(deployment.id)' sent a response that is not an embeddings list.", code: "upstream_invalid_response")
        }
        decoded.model = request.model
        return decoded
    }

    /// Provider errors keep their message; the caller's own mistakes stay 4xx, the rest is 502.
    static func upstreamError(status: Int, body: [UInt8], model: String) -> APIError {
        let message = (try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(body)))?.error.message ?? "status \(status)"
        switch status {
        case 429:
            return APIError(status: .tooManyRequests, type: .rateLimit, message: "The provider for '\(model)' is rate limiting: \(message)", code: "upstream_rate_limited")
        case 400, 404, 413, 422:
            return APIError(status: .init(code: status), type: .invalidRequest, message: "The provider for '\(model)' rejected the request: \(message)")
        default:
            return APIError(status: .badGateway, type: .upstream, message: "The provider for '\(model)' failed with status \(status): \(message)", code: "upstream_error")
        }
    }
}
