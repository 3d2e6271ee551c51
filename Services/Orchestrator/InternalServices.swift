import ConduitHTTP
import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes

/// A chunk the retriever found.
typealias RetrievedChunk = SearchHit

/// The two internal services the chat pipeline calls: the retriever for RAG and the embedder
/// for the semantic cache's query vectors. Each call carries the caller's signed identity, so
/// the tenant the services act for is the one the gateway signed (`tenant` must be that one).
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
        let headers = ServiceClient.propagatedHeaders(from: context)
        let response: HTTP.HTTPResponse
        let bytes: [UInt8]
        do {
            response = try await client.send(to: .retriever, path: "/v1/search", body: try WireCoding.encode(JSONValue.object(body)), headers: headers, timeout: .seconds(30))
            bytes = try await response.body.collect(upTo: 32 << 20)
        } catch {
            throw APIError(status: .badGateway, type: .upstream, message: "The retriever could not be reached.", code: "service_unavailable")
        }
        guard response.status == 200 else {
            // A 4xx is the caller's mistake: its message stays, its `param` goes under
            // `conduit.rag` (e.g. `conduit.rag.collection`).
            if (400..<500).contains(response.status), let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(bytes)) {
                throw APIError(
                    status: .init(code: response.status), type: .invalidRequest, message: envelope.error.message,
                    param: ["conduit.rag", envelope.error.param].compactMap { $0 }.joined(separator: "."), code: envelope.error.code)
            }
            throw APIError(status: .badGateway, type: .upstream, message: "The retriever failed (\(response.status)).", code: "retriever_error")
        }
        return try JSONDecoder().decode(SearchResults.self, from: Data(bytes)).results
    }

    func embed(_ text: String, tenant: String, context: ConduitRequestContext) async throws -> [Float] {
        try await client.embed(text, model: embeddingModel, context: context)
    }
}
