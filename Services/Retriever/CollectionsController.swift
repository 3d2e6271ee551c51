import ConduitKit
import ConduitProtocol
import Foundation
import Hummingbird
import SearchEngine

/// Collection management for the caller's tenant: create with parameters, list, stats, delete
/// a collection, delete one document. Postgres changes first, then the in-memory catalog.
struct CollectionsController: Sendable {
    struct CreateRequest: Decodable, Sendable {
        var name: String
        var dimension: Int
        var m: Int?
        var efConstruction: Int?
        var efSearch: Int?
        var quantization: VectorIndex.Quantization?
        var k1: Double?
        var b: Double?

        enum CodingKeys: String, CodingKey {
            case name, dimension, m, quantization, k1, b
            case efConstruction = "ef_construction"
            case efSearch = "ef_search"
        }
    }

    struct CollectionInfo: Encodable, Sendable {
        var object = "collection"
        var name: String
        var dimension: Int
        var m: Int
        var efConstruction: Int
        var efSearch: Int
        var quantization: VectorIndex.Quantization
        var k1: Double
        var b: Double
        var documents: Int
        var chunks: Int
        var indexBytes: Int
        var appliedOffsets: [ConsumedPosition]
        var snapshotAgeSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case object, name, dimension, m, quantization, k1, b, documents, chunks
            case efConstruction = "ef_construction"
            case efSearch = "ef_search"
            case indexBytes = "index_bytes"
            case appliedOffsets = "applied_offsets"
            case snapshotAgeSeconds = "snapshot_age_seconds"
        }
    }

    struct Deleted: Encodable, Sendable {
        var id: String
        var object: String
        var deleted = true
    }

    let catalog: SearchCatalog
    let repository: any ChunkRepository
    let snapshots: SnapshotStore?

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/collections") { request, context in try await create(request: request, context: context) }
        router.get("/v1/collections") { _, context in
            let tenant = try context.callerTenant()
            let offsets = try await repository.appliedOffsets()
            return try jsonResponse(CollectionList(data: catalog.keys(tenant: tenant).compactMap { info($0, offsets: offsets) }))
        }
        router.get("/v1/collections/{name}") { request, context in
            let key = try key(request, context)
            guard let info = info(key, offsets: try await repository.appliedOffsets()) else { throw notFound(key) }
            return try jsonResponse(info)
        }
        router.delete("/v1/collections/{name}") { request, context in
            let key = try key(request, context)
            guard try await repository.deleteCollection(key) else { throw notFound(key) }
            catalog.remove(key)
            snapshots?.remove(key)
            return try jsonResponse(Deleted(id: key.collection, object: "collection"))
        }
        router.delete("/v1/collections/{name}/documents/{doc_id}") { request, context in
            let key = try key(request, context)
            let documentID = try context.pathParameter("doc_id")
            guard let collection = catalog.collection(key) else { throw notFound(key) }
            guard try await repository.deleteDocument(key, documentID: documentID) else {
                throw APIError(status: .notFound, type: .invalidRequest, message: "Document '\(documentID)' is not in collection '\(key.collection)'.",
                               param: "doc_id", code: "document_not_found")
            }
            collection.removeDocument(documentID)
            return try jsonResponse(Deleted(id: documentID, object: "document"))
        }
    }

    private func create(request: Request, context: ConduitRequestContext) async throws -> Response {
        let tenant = try context.callerTenant()
        let body = try await request.decodeJSON(CreateRequest.self, context: context)
        try Self.validate(name: body.name)
        guard (1...4096).contains(body.dimension) else { throw APIError.invalidRequest("'dimension' must be between 1 and 4096.", param: "dimension") }
        if let m = body.m, !(2...128).contains(m) { throw APIError.invalidRequest("'m' must be between 2 and 128.", param: "m") }
        if let ef = body.efConstruction, !(1...4096).contains(ef) { throw APIError.invalidRequest("'ef_construction' must be between 1 and 4096.", param: "ef_construction") }
        if let ef = body.efSearch, !(1...10_000).contains(ef) { throw APIError.invalidRequest("'ef_search' must be between 1 and 10000.", param: "ef_search") }
        if let k1 = body.k1, !(k1 >= 0 && k1 <= 10) { throw APIError.invalidRequest("'k1' must be between 0 and 10.", param: "k1") }
        if let b = body.b, !(b >= 0 && b <= 1) { throw APIError.invalidRequest("'b' must be between 0 and 1.", param: "b") }
        let defaults = VectorIndex.Parameters()
        let configuration = SearchCollection.Configuration(
            dimension: body.dimension,
            vector: .init(m: body.m ?? defaults.m, efConstruction: body.efConstruction ?? defaults.efConstruction,
                          efSearch: body.efSearch ?? defaults.efSearch, quantization: body.quantization ?? .none),
            keyword: .init(k1: body.k1 ?? 1.2, b: body.b ?? 0.75))
        let key = SearchCatalog.Key(tenant: tenant, collection: body.name)
        guard try await repository.createCollection(key, configuration: configuration) else {
            throw APIError(status: .conflict, type: .invalidRequest, message: "Collection '\(body.name)' already exists.", param: "name", code: "collection_exists")
        }
        _ = catalog.collection(key, orCreate: configuration)
        let info = info(key, offsets: [])!
        return try jsonResponse(info, status: .created)
    }

    private func info(_ key: SearchCatalog.Key, offsets: [ConsumedPosition]) -> CollectionInfo? {
        guard let collection = catalog.collection(key) else { return nil }
        let stats = collection.stats
        let configuration = collection.configuration
        return CollectionInfo(
            name: key.collection, dimension: configuration.dimension, m: configuration.vector.m,
            efConstruction: configuration.vector.efConstruction, efSearch: configuration.vector.efSearch,
            quantization: configuration.vector.quantization, k1: configuration.keyword.k1, b: configuration.keyword.b,
            documents: stats.documents, chunks: stats.chunks, indexBytes: stats.indexBytes, appliedOffsets: offsets,
            snapshotAgeSeconds: snapshots?.age(of: key))
    }

    private func key(_ request: Request, _ context: ConduitRequestContext) throws -> SearchCatalog.Key {
        SearchCatalog.Key(tenant: try context.callerTenant(), collection: try context.pathParameter("name"))
    }

    private func notFound(_ key: SearchCatalog.Key) -> APIError {
        APIError(status: .notFound, type: .invalidRequest, message: "Collection '\(key.collection)' does not exist.",
                 param: "collection", code: "collection_not_found")
    }

    static func validate(name: String) throws {
        guard Identifier.collection.isValid(name) else {
            throw APIError.invalidRequest("'name' must be \(Identifier.collection.rule).", param: "name")
        }
    }
}

struct CollectionList: Encodable, Sendable {
    var object = "list"
    var data: [CollectionsController.CollectionInfo]
}
