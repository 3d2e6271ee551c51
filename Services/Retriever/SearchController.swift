import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes
import Hummingbird
import SearchEngine

/// `POST /v1/search`: hybrid, vector or keyword search in one of the caller's collections. The
/// tenant comes from `X-Conduit-Tenant` (set by the gateway); query text is embedded by the
/// embedder unless a `vector` is given.
struct SearchController: Sendable {
    struct SearchRequest: Decodable, Sendable {
        var query: String?
        var vector: [Float]?
        var collection: String
        var topK: Int?
        var mode: SearchCollection.Mode?
        var filter: MetadataFilter?
        var rrfK: Double?
        var weights: [String: Double]?
        var ef: Int?
        var fusion: SearchCollection.Fusion?
        var model: String?

        enum CodingKeys: String, CodingKey {
            case query, vector, collection, mode, filter, weights, ef, fusion, model
            case topK = "top_k"
            case rrfK = "rrf_k"
        }
    }

    let catalog: SearchCatalog
    let embeddings: any QueryEmbedding

    func addRoutes(to router: Router<ConduitRequestContext>) {
        router.post("/v1/search") { request, context in
            try await search(request: request, context: context)
        }
    }

    func search(request: Request, context: ConduitRequestContext) async throws -> Response {
        let tenant = try Self.tenant(of: request)
        let body = try await request.decodeJSON(SearchRequest.self, context: context)
        guard let collection = catalog.collection(.init(tenant: tenant, collection: body.collection)) else {
            throw APIError(status: .notFound, type: .invalidRequest, message: "Collection '\(body.collection)' does not exist.",
                           param: "collection", code: "collection_not_found")
        }
        let mode = body.mode ?? .hybrid
        if let weights = body.weights, let unknown = weights.keys.first(where: { $0 != "vector" && $0 != "keyword" }) {
            throw APIError.invalidRequest("'weights' takes 'vector' and 'keyword'; '\(unknown)' is not a signal.", param: "weights")
        }
        if let rrfK = body.rrfK, !(rrfK > 0) { throw APIError.invalidRequest("'rrf_k' must be positive.", param: "rrf_k") }
        if let ef = body.ef, !(1...10_000).contains(ef) { throw APIError.invalidRequest("'ef' must be between 1 and 10000.", param: "ef") }
        var vector = body.vector
        if vector == nil, mode != .keyword, let text = body.query, !text.isEmpty {
            vector = try await embeddings.embed(text, model: body.model, context: context)
        }
        if mode == .keyword, body.query == nil, body.vector != nil {
            throw APIError.invalidRequest("mode 'keyword' needs 'query' text.", param: "query")
        }
        let query = SearchCollection.Query(
            vector: vector, text: body.query, topK: body.topK ?? 10, mode: mode, filter: body.filter,
            rrfK: body.rrfK ?? 60, weights: body.weights ?? [:], ef: body.ef, fusion: body.fusion ?? .rrf)
        let results: [SearchCollection.Result]
        do {
            results = try collection.search(query)
        } catch let error as SearchCollection.QueryError {
            throw APIError.invalidRequest(error.message, param: error.parameter)
        }
        return try jsonResponse(SearchResults(results: results.map {
            SearchHit(chunkID: $0.chunkID, docID: $0.documentID, text: $0.text, start: $0.start, end: $0.end,
                      metadata: $0.metadata.mapValues(MetadataConversion.json), score: $0.score, scores: $0.scores)
        }))
    }

    static func tenant(of request: Request) throws -> String {
        guard let name = HTTPField.Name(ConduitHeader.tenant), let tenant = request.headers[name], !tenant.isEmpty else {
            throw APIError.invalidRequest("The \(ConduitHeader.tenant) header is required (the gateway sets it).", param: ConduitHeader.tenant)
        }
        return tenant
    }
}

/// Turns query text into a vector.
protocol QueryEmbedding: Sendable {
    func embed(_ text: String, model: String?, context: ConduitRequestContext) async throws -> [Float]
}

/// Query embeddings from the embedder service's `/v1/embeddings`.
struct EmbedderQueryEmbedding: QueryEmbedding {
    let client: ServiceClient
    let defaultModel: String

    func embed(_ text: String, model: String?, context: ConduitRequestContext) async throws -> [Float] {
        let request = EmbeddingsRequest(model: model ?? defaultModel, input: .text(text))
        let response: HTTP.HTTPResponse
        do {
            response = try await client.send(to: .embedder, path: "/v1/embeddings", body: Array(try JSONEncoder().encode(request)),
                                             headers: ServiceClient.propagatedHeaders(from: context), timeout: .seconds(10))
        } catch {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder could not be reached to embed the query.", code: "embedder_unavailable")
        }
        let bytes = try await response.body.collect(upTo: 1 << 22)
        guard response.status == 200 else {
            // The embedder's own envelope (unknown model, bad input) is the caller's answer.
            if let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(bytes)) {
                throw APIError(status: .init(code: response.status), type: ErrorType(rawValue: envelope.error.type) ?? .upstream, message: envelope.error.message,
                               param: envelope.error.param == nil ? nil : "model", code: envelope.error.code)
            }
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder answered \(response.status).", code: "embedder_error")
        }
        let decoded = try JSONDecoder().decode(EmbeddingsResponse.self, from: Data(bytes))
        guard let floats = decoded.data.first?.embedding.floats else {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder returned no embedding.", code: "embedder_error")
        }
        return floats
    }
}
