import SearchEngine
import Synchronization

/// The entries of one tenant and cache context: their vectors in an HNSW index, their questions
/// and expiry times beside it.
final class ContextIndex: Sendable {
    struct Candidate: Sendable {
        var id: String
        var question: String
        var similarity: Double
    }

    private struct Entry {
        var id: String
        var question: String
        var expires: ContinuousClock.Instant
    }

    private struct State {
        var entries: [UInt32: Entry] = [:]
        var labels: [String: UInt32] = [:]
        var nextLabel: UInt32 = 0
    }

    let tenant: String
    let dimension: Int
    private let vectors: VectorIndex
    private let state = Mutex(State())

    init(tenant: String, dimension: Int) {
        self.tenant = tenant
        self.dimension = dimension
        vectors = VectorIndex(dimension: dimension, parameters: .init(m: 16, efConstruction: 200, efSearch: 128))
    }

    var count: Int { state.withLock { $0.entries.count } }

    func contains(id: String) -> Bool { state.withLock { $0.labels[id] != nil } }

    func insert(id: String, question: String, vector: [Float], expires: ContinuousClock.Instant) {
        let label: UInt32? = state.withLock { state in
            guard state.labels[id] == nil else { return nil }
            let label = state.nextLabel
            state.nextLabel += 1
            state.labels[id] = label
            state.entries[label] = Entry(id: id, question: question, expires: expires)
            return label
        }
        if let label { vectors.upsert(label: label, vector: vector) }
    }

    func remove(id: String) {
        guard let label = state.withLock({ state -> UInt32? in
            guard let label = state.labels.removeValue(forKey: id) else { return nil }
            state.entries[label] = nil
            return label
        }) else { return }
        vectors.remove(label: label)
    }

    /// The nearest live entries, most similar first; expired ones are dropped on the way.
    func nearest(_ vector: [Float], count: Int) -> [Candidate] {
        let hits = vectors.search(vector, k: count)
        let now = ContinuousClock.now
        var expired: [String] = []
        let candidates: [Candidate] = state.withLock { state in
            hits.compactMap { hit in
                guard let entry = state.entries[hit.label] else { return nil }
                if entry.expires <= now {
                    expired.append(entry.id)
                    return nil
                }
                return Candidate(id: entry.id, question: entry.question, similarity: Double(hit.score))
            }
        }
        for id in expired { remove(id: id) }
        return candidates
    }
}
