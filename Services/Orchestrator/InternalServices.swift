import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes

/// A chunk the retriever found.
typealias RetrievedChunk = SearchHit

/// The two internal services the chat pipeline calls: the retriever for RAG and the embedder
/// for the semantic cache's query vectors. Each call carries the caller's identity headers.
protocol InternalServices: Sendable {
    func search(_ options: RAGOptions, query: String, tenant: String, context: ConduitRequestContext) async throws -> [RetrievedChunk]
    func embed(_ text: String, tenant: String, context: ConduitRequestContext) async throws -> [Float]
}

struct InternalServiceClient: InternalServices {
    let client: ServiceClient
    let embeddingModel: String

    func search(_ options: RAGOptions, query: String, tenant: String, context: ConduitRequestContext) async throws -> [RetrievedChunk] {
        var body: [String: JSONValue] = [
            "collection": .string(options.collection), "query": .string(query),
            "top_k": .number(Double(options.topK ?? 8)), "mode": .string((options.mode ?? .hybrid).rawValue),
        ]
        if let filter = options.filter { body["filter"] = filter }
        let bytes = try await call(.retriever, path: "/v1/search", body: try WireCoding.encode(JSONValue.object(body)), tenant: tenant, context: context, param: "conduit.rag")
        return try JSONDecoder().decode(SearchResults.self, from: Data(bytes)).results
    }

    func embed(_ text: String, tenant: String, context: ConduitRequestContext) async throws -> [Float] {
        let request = EmbeddingsRequest(model: embeddingModel, input: .text(text))
        let bytes = try await call(.embedder, path: "/v1/embeddings", body: Array(try JSONEncoder().encode(request)), tenant: tenant, context: context, param: nil)
        guard let vector = try JSONDecoder().decode(EmbeddingsResponse.self, from: Data(bytes)).data.first?.embedding.floats else {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder returned no vector.", code: "embedder_error")
        }
        return vector
    }

    /// A 4xx from the service is the caller's mistake and keeps its message (its `param` put
    /// under `param`, e.g. `conduit.rag.collection`); anything else is the service's failure.
    private func call(_ service: ServiceName, path: String, body: [UInt8], tenant: String, context: ConduitRequestContext, param: String?) async throws -> [UInt8] {
        let headers = ServiceClient.propagatedHeaders(from: context, identity: [(ConduitHeader.tenant, tenant)])
        let response: HTTP.HTTPResponse
        let bytes: [UInt8]
        do {
            response = try await client.send(to: service, path: path, body: body, headers: headers, timeout: .seconds(30))
            bytes = try await response.body.collect(upTo: 32 << 20)
        } catch {
            throw APIError(status: .badGateway, type: .upstream, message: "The \(service.rawValue) service could not be reached.", code: "service_unavailable")
        }
        guard response.status == 200 else {
            let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(bytes))
            if (400..<500).contains(response.status), let envelope {
                throw APIError(
                    status: .init(code: response.status), type: .invalidRequest, message: envelope.error.message,
                    param: [param, envelope.error.param].compactMap { $0 }.joined(separator: "."), code: envelope.error.code)
            }
            throw APIError(status: .badGateway, type: .upstream, message: "The \(service.rawValue) service failed (\(response.status)).", code: "\(service.rawValue)_error")
        }
        return bytes
    }
}
