import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
@testable import Orchestrator
import Prometheus
import Providers
import SemanticCache
import TestSupport

/// The embedder and retriever: embeddings are letter counts (so questions with the same
/// letters are identical to the cache), searches return the chunks given, per collection.
final class FakeServices: InternalServices {
    let chunks: [String: [RetrievedChunk]]
    private let searches = Locked<[(collection: String, query: String, tenant: String)]>([])
    var searched: [(collection: String, query: String, tenant: String)] { searches.withLock { $0 } }

    init(chunks: [String: [RetrievedChunk]] = [:]) { self.chunks = chunks }

    func search(_ options: RAGOptions, query: String, tenant: String, context: ConduitRequestContext) async throws -> [RetrievedChunk] {
        searches.withLock { $0.append((options.collection, query, tenant)) }
        guard let found = chunks[options.collection] else {
            throw APIError(status: .notFound, type: .invalidRequest, message: "No collection '\(options.collection)'.", param: "conduit.rag.collection", code: "collection_not_found")
        }
        return found
    }

    func embed(_ text: String, tenant: String, context: ConduitRequestContext) async throws -> [Float] {
        var counts = [Float](repeating: 0, count: 26)
        for scalar in text.lowercased().unicodeScalars where ("a"..."z").contains(scalar) { counts[Int(scalar.value - 97)] += 1 }
        return counts
    }
}
