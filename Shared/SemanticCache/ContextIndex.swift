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
        var bytes = 0
        var lastUsed = ContinuousClock.now
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

    /// Memory the entries take, estimated: vector, question, graph links and bookkeeping.
    var bytes: Int { state.withLock { $0.bytes } }

    /// When a lookup or an insert last used this index (for least-recently-used eviction).
    var lastUsed: ContinuousClock.Instant { state.withLock { $0.lastUsed } }

    static func estimatedBytes(dimension: Int, question: String) -> Int {
        dimension * 4 + question.utf8.count + 2 * 16 * 4 + 160
    }

    /// Removes entries whose time is up; returns how many.
    @discardableResult
    func removeExpired(now: ContinuousClock.Instant = .now) -> Int {
        let expired = state.withLock { state in state.entries.values.filter { $0.expires <= now }.map(\.id) }
        for id in expired { remove(id: id) }
        return expired.count
    }

    func contains(id: String) -> Bool { state.withLock { $0.labels[id] != nil } }

    func insert(id: String, question: String, vector: [Float], expires: ContinuousClock.Instant) {
        let label: UInt32? = state.withLock { state in
            guard state.labels[id] == nil else { return nil }
            let label = state.nextLabel
            state.nextLabel += 1
            state.labels[id] = label
            state.entries[label] = Entry(id: id, question: question, expires: expires)
            state.bytes += Self.estimatedBytes(dimension: dimension, question: question)
            state.lastUsed = .now
            return label
        }
        if let label { vectors.upsert(label: label, vector: vector) }
    }

    func remove(id: String) {
        guard let label = state.withLock({ state -> UInt32? in
            guard let label = state.labels.removeValue(forKey: id) else { return nil }
            if let entry = state.entries.removeValue(forKey: label) {
                state.bytes -= Self.estimatedBytes(dimension: dimension, question: entry.question)
            }
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
            state.lastUsed = now
            return hits.compactMap { hit in
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
