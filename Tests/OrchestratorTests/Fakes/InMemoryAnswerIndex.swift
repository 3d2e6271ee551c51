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

/// Cached answers in a list: a hit is an entry of the same tenant and context whose vector's
/// cosine similarity passes the threshold.
final class InMemoryAnswerIndex: AnswerIndex {
    struct Entry {
        var tenant: String
        var context: String
        var question: String
        var vector: [Float]
        var payload: [UInt8]
    }
    private let entries = Locked<[Entry]>([])
    var count: Int { entries.withLock { $0.count } }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        let dot = zip(a, b).reduce(0) { $0 + Double($1.0 * $1.1) }
        let norms = (a.reduce(0) { $0 + Double($1 * $1) } * b.reduce(0) { $0 + Double($1 * $1) }).squareRoot()
        return norms == 0 ? 0 : dot / norms
    }

    func lookup(tenant: String, context: String, question: String, vector: [Float], threshold: Double) async throws -> SemanticCache.Lookup {
        let scored = entries.withLock { entries in
            entries.filter { $0.tenant == tenant && $0.context == context }.map { ($0, Self.cosine($0.vector, vector)) }.max { $0.1 < $1.1 }
        }
        guard let (entry, similarity) = scored else { return .miss(similarity: nil, rejection: nil) }
        guard similarity >= threshold else { return .miss(similarity: similarity, rejection: nil) }
        return .hit(.init(payload: entry.payload, similarity: similarity, question: entry.question))
    }

    func store(tenant: String, context: String, question: String, vector: [Float], payload: [UInt8]) async throws {
        entries.withLock { $0.append(Entry(tenant: tenant, context: context, question: question, vector: vector, payload: payload)) }
    }

    func purge(tenant: String) async throws -> Int {
        entries.withLock { entries in
            let before = entries.count
            entries.removeAll { $0.tenant == tenant }
            return before - entries.count
        }
    }
}
