import ConduitHTTP
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
    /// Beyond what any search needs, and bounded so no request costs the process much:
    /// `top_k` at most 1,000, `ef` at most 4,096, a filter of at most 1,024 conditions and values.
    static let maxTopK = 1000
    static let maxEf = 4096
    static let maxFilterSize = 1024

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
    /// Where searches run: never on the cooperative pool.
    let engine: EngineExecutor

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/search") { request, context in
            try await search(request: request, context: context)
        }
    }

    func search(request: Request, context: ConduitRequestContext) async throws -> Response {
        let tenant = try context.callerTenant()
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
        if let ef = body.ef, !(1...Self.maxEf).contains(ef) { throw APIError.invalidRequest("'ef' must be between 1 and \(Self.maxEf).", param: "ef") }
        if let topK = body.topK, !(1...Self.maxTopK).contains(topK) {
            throw APIError.invalidRequest("'top_k' must be between 1 and \(Self.maxTopK).", param: "top_k")
        }
        if let filter = body.filter, filter.size > Self.maxFilterSize {
            throw APIError.invalidRequest("'filter' has \(filter.size) conditions and values; at most \(Self.maxFilterSize) are allowed.", param: "filter")
        }
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
            results = try await engine.run { try collection.search(query) }
        } catch let error as SearchCollection.QueryError {
            throw APIError.invalidRequest(error.message, param: error.parameter)
        }
        return try jsonResponse(SearchResults(results: results.map {
            SearchHit(chunkID: $0.chunkID, docID: $0.documentID, text: $0.text, start: $0.start, end: $0.end,
                      metadata: $0.metadata, score: $0.score, scores: $0.scores)
        }))
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
        try await client.embed(text, model: model ?? defaultModel, context: context)
    }
}
