import Foundation
import Synchronization

/// HNSW over L2-normalised float32 vectors, scored by inner product (cosine for unit vectors),
/// keyed by caller-chosen `UInt32` labels.
///
/// Searches run concurrently with each other; an insert or delete excludes them briefly
/// (a readers–writer lock). Deletes are tombstones: deleted nodes still route searches but
/// never appear in results. Once more than `compactionRatio` of the nodes are deleted, a
/// background thread rebuilds the graph from the live vectors while searches and updates go
/// on against the old one, then swaps it in with the updates made meanwhile replayed, so
/// recall does not decay with churn. With `quantization: .int8` the walk scores 8-bit codes
/// and the beam is rescored with the float vectors.
///
/// `@unchecked Sendable`: `graph` and the compaction log are read only under the read lock
/// and written only under the write lock of `lock`; the visited pool is behind a `Mutex`.
public final class VectorIndex: @unchecked Sendable {
    public enum Quantization: String, Sendable, Codable, CaseIterable {
        case none
        case int8
    }

    public struct Parameters: Sendable, Equatable, Codable {
        /// Links per node per layer (twice that on layer 0). Default 16.
        public var m: Int
        /// Candidate list size while inserting. Default 200.
        public var efConstruction: Int
        /// Candidate list size while searching (at least k). Default 64.
        public var efSearch: Int
        /// Share of deleted nodes that triggers a rebuild. Default 0.25.
        public var compactionRatio: Double
        /// 8-bit codes for the graph walk, floats for the final scores. Default none.
        public var quantization: Quantization

        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, compactionRatio: Double = 0.25,
                    quantization: Quantization = .none) {
            self.m = min(max(2, m), 128)
            self.efConstruction = max(1, efConstruction)
            self.efSearch = max(1, efSearch)
            self.compactionRatio = compactionRatio
            self.quantization = quantization
        }
    }

    public struct Hit: Sendable, Equatable {
        public var label: UInt32
        public var score: Float
        public init(label: UInt32, score: Float) {
            self.label = label
            self.score = score
        }
    }

    private enum Change {
        case upsert(UInt32, [Float])
        case remove(UInt32)
    }

    public let dimension: Int
    public let parameters: Parameters
    private let lock = ReadWriteLock()
    private(set) var graph: HNSWGraph
    /// Changes made while a background rebuild runs, replayed onto the rebuilt graph.
    private var compactionLog: [Change]?
    private let visitedPool = Mutex<[VisitedList]>([])

    public convenience init(dimension: Int, parameters: Parameters = .init(), capacity: Int = 64) {
        self.init(graph: HNSWGraph(dimension: dimension, parameters: parameters, capacity: capacity))
    }

    init(graph: HNSWGraph) {
        dimension = graph.dimension
        parameters = graph.parameters
        self.graph = graph
    }

    func reading<T>(_ body: () throws -> T) rethrows -> T { try lock.reading(body) }

    func writing<T>(_ body: () throws -> T) rethrows -> T { try lock.writing(body) }

    /// Live (not deleted) vectors.
    public var count: Int { reading { graph.liveCount } }

    /// Bytes held by the graph, vectors and codes (capacity, not just what is filled).
    public var memoryBytes: Int { reading { graph.memoryBytes } }

    public func contains(label: UInt32) -> Bool { reading { graph.nodeOfLabel[label] != nil } }

    /// Makes room for `count` vectors at once (avoids regrowing while loading).
    public func reserve(_ count: Int) { writing { graph.reserve(count) } }

    /// Adds or replaces the vector for `label`. It is normalised to unit length; it must have
    /// `dimension` components.
    public func upsert(label: UInt32, vector: [Float]) {
        precondition(vector.count == dimension, "vector has \(vector.count) dimensions, index has \(dimension)")
        var unit = vector
        Kernels.normalize(&unit)
        let compact: Bool = writing {
            graph.markDeleted(label: label)
            unit.withUnsafeBufferPointer { graph.insert(label: label, vector: $0.baseAddress!) }
            compactionLog?.append(.upsert(label, unit))
            return needsCompaction
        }
        if compact { compactInBackground() }
    }

    public func remove(label: UInt32) {
        let compact: Bool = writing {
            guard graph.nodeOfLabel[label] != nil else { return false }
            graph.markDeleted(label: label)
            compactionLog?.append(.remove(label))
            return needsCompaction
        }
        if compact { compactInBackground() }
    }

    private var needsCompaction: Bool {
        compactionLog == nil && graph.count > 64
            && Double(graph.deletedCount) > parameters.compactionRatio * Double(graph.count)
    }

    /// The `k` best live vectors for `query`, best first. With `filter`, only labels it accepts
    /// are returned; it is applied during the graph walk, and when a sample says it accepts
    /// under 2% of the vectors an exact scan of the accepted ones replaces the walk, so a
    /// selective filter still yields `k` results when they exist.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, filter: ((UInt32) -> Bool)? = nil) -> [Hit] {
        precondition(query.count == dimension, "query has \(query.count) dimensions, index has \(dimension)")
        guard k > 0 else { return [] }
        var unit = query
        Kernels.normalize(&unit)
        let visited = visitedPool.withLock { $0.popLast() } ?? VisitedList(capacity: 64)
        defer { visitedPool.withLock { $0.append(visited) } }
        return reading {
            let found: [HNSWGraph.Candidate]
            if let filter, acceptedShare(filter) < 0.02 {
                found = graph.exactScan(unit, k: k, accept: filter)
            } else {
                let walked = graph.search(unit, k: k, ef: ef ?? parameters.efSearch, accept: filter, visited: visited)
                // A filter can starve the walk of accepted nodes; then the exact answer is cheap.
                found = filter != nil && walked.count < k ? graph.exactScan(unit, k: k, accept: filter) : walked
            }
            return found.map { Hit(label: graph.labels[Int($0.node)], score: $0.score) }
        }
    }

    /// The share of live vectors `filter` accepts, from an even sample of up to 512 nodes.
    private func acceptedShare(_ filter: (UInt32) -> Bool) -> Double {
        let total = graph.count
        guard total > 0 else { return 1 }
        let step = max(1, total / 512)
        var seen = 0
        var accepted = 0
        for node in stride(from: 0, to: total, by: step) where graph.deleted[node] == 0 {
            seen += 1
            if filter(graph.labels[node]) { accepted += 1 }
        }
        return seen == 0 ? 0 : Double(accepted) / Double(seen)
    }

    // MARK: - Compaction

    /// Rebuilds the graph from the live vectors now, on the calling thread. Searches and
    /// updates continue against the old graph meanwhile.
    public func compact() {
        let copy: (labels: [UInt32], vectors: [Float])? = writing {
            guard compactionLog == nil else { return nil }
            compactionLog = []
            var labels: [UInt32] = []
            var vectors: [Float] = []
            labels.reserveCapacity(graph.liveCount)
            vectors.reserveCapacity(graph.liveCount * dimension)
            for node in 0..<graph.count where graph.deleted[node] == 0 {
                labels.append(graph.labels[node])
                vectors.append(contentsOf: UnsafeBufferPointer(start: graph.vectors.base + node * dimension, count: dimension))
            }
            return (labels, vectors)
        }
        guard let copy else { return }
        let fresh = HNSWGraph(dimension: dimension, parameters: parameters, capacity: copy.labels.count)
        copy.vectors.withUnsafeBufferPointer { vectors in
            for (row, label) in copy.labels.enumerated() {
                fresh.insert(label: label, vector: vectors.baseAddress! + row * dimension)
            }
        }
        writing {
            for change in compactionLog ?? [] {
                switch change {
                case .upsert(let label, let vector):
                    fresh.markDeleted(label: label)
                    vector.withUnsafeBufferPointer { fresh.insert(label: label, vector: $0.baseAddress!) }
                case .remove(let label):
                    fresh.markDeleted(label: label)
                }
            }
            graph = fresh
            compactionLog = nil
        }
    }

    private func compactInBackground() {
        let thread = Thread { [self] in compact() }
        thread.name = "conduit-hnsw-compaction"
        thread.start()
    }

    /// True while a background rebuild is under way.
    public var isCompacting: Bool { reading { compactionLog != nil } }
}
