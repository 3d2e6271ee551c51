import SearchEngine
import Synchronization

/// The entries of one tenant and cache context: their vectors in an HNSW index, their questions
/// and expiry times beside it. Entries loaded in bulk at start wait in a flat set, searched by
/// exact scan, until `buildPendingBlock` has moved them into the graph: a restarted replica
/// answers as soon as it has read Redis, not once every graph is built.
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
        var pending: FlatVectors
    }

    let tenant: String
    let dimension: Int
    private let vectors: VectorIndex
    private let state: Mutex<State>

    init(tenant: String, dimension: Int) {
        self.tenant = tenant
        self.dimension = dimension
        vectors = VectorIndex(dimension: dimension, parameters: .init(m: 16, efConstruction: 200, efSearch: 128))
        state = Mutex(State(pending: FlatVectors(dimension: dimension)))
    }

    /// Entries searchable by exact scan only, waiting for the graph.
    var pendingCount: Int { state.withLock { $0.pending.count } }

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

    /// Adds an entry; `deferred` (bulk loads) leaves its vector in the flat set for the builder.
    func insert(id: String, question: String, vector: [Float], expires: ContinuousClock.Instant, deferred: Bool = false) {
        let label: UInt32? = state.withLock { state in
            guard state.labels[id] == nil else { return nil }
            let label = state.nextLabel
            state.nextLabel += 1
            state.labels[id] = label
            state.entries[label] = Entry(id: id, question: question, expires: expires)
            state.bytes += Self.estimatedBytes(dimension: dimension, question: question)
            state.lastUsed = .now
            if deferred { state.pending.append(label: label, vector: vector) }
            return deferred ? nil : label
        }
        if let label { vectors.upsert(label: label, vector: vector) }
    }

    /// Moves the oldest block of waiting vectors into the graph (CPU work: call it on an engine
    /// thread). Returns whether more wait.
    @discardableResult
    func buildPendingBlock() -> Bool {
        guard let block = state.withLock({ $0.pending.blocks.first }) else { return false }
        for position in 0..<block.count {
            let label = block.labels[position]
            guard state.withLock({ $0.entries[label] != nil }) else { continue }
            vectors.upsert(label: label, vector: block.vector(at: position, dimension: dimension))
        }
        let (removed, more) = state.withLock { state -> ([UInt32], Bool) in
            state.pending.removeFirstBlock()
            return (block.labels.filter { state.entries[$0] == nil }, !state.pending.isEmpty)
        }
        // Entries removed while their vectors went in leave the graph too.
        for label in removed where vectors.contains(label: label) { vectors.remove(label: label) }
        return more
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
        var hits = vectors.search(vector, k: count)
        let pending = state.withLock { $0.pending }
        if !pending.isEmpty {
            // A block can be in both while it moves into the graph: each label once.
            var best: [UInt32: Float] = [:]
            for hit in hits + pending.search(vector, k: count) { best[hit.label] = max(best[hit.label] ?? hit.score, hit.score) }
            hits = best.map { VectorIndex.Hit(label: $0.key, score: $0.value) }.sorted { $0.score > $1.score }.prefix(count).map { $0 }
        }
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
