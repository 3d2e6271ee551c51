import Foundation

/// HNSW over L2-normalised float32 vectors, scored by inner product (cosine for unit vectors).
///
/// Searches run concurrently with each other; an insert or delete excludes them briefly
/// (a readers–writer lock), so searches may run while a stream of inserts goes on. Deletes are
/// tombstones: deleted nodes still route searches but never appear in results, and once more
/// than `compactionRatio` of the nodes are deleted the graph is rebuilt from the live ones so
/// recall does not decay with churn.
///
/// `@unchecked Sendable`: every stored property is read only under the read lock and written
/// only under the write lock of `lock`.
public final class VectorIndex: @unchecked Sendable {
    public struct Parameters: Sendable {
        /// Links per node per layer (twice that on layer 0). Default 16.
        public var m: Int = 16
        /// Candidate list size while inserting. Default 200.
        public var efConstruction: Int = 200
        /// Candidate list size while searching (at least k). Default 64.
        public var efSearch: Int = 64
        /// Share of deleted nodes that triggers a rebuild. Default 0.25.
        public var compactionRatio: Double = 0.25
        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, compactionRatio: Double = 0.25) {
            self.m = max(2, m)
            self.efConstruction = max(1, efConstruction)
            self.efSearch = max(1, efSearch)
            self.compactionRatio = compactionRatio
        }
    }

    public struct Hit: Sendable, Equatable {
        public var id: String
        public var score: Float
    }

    public let dimension: Int
    public let parameters: Parameters
    /// Heap-allocated: a pthread lock must not move, and `&` on a stored property may pass a copy.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var vectors: [Float] = []
    private var ids: [String] = []
    private var numbers: [String: Int32] = [:]
    /// neighbors[node][level]
    private var neighbors: [[[Int32]]] = []
    private var deleted: [Bool] = []
    private var deletedCount = 0
    private var entry: Int32 = -1
    private var topLevel = -1
    private var generator = SystemRandomNumberGenerator()

    public init(dimension: Int, parameters: Parameters = .init()) {
        self.dimension = dimension
        self.parameters = parameters
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Live (not deleted) vectors.
    public var count: Int {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return ids.count - deletedCount
    }

    /// Adds or replaces the vector for `id`. The vector must have `dimension` floats.
    public func upsert(id: String, vector: [Float]) {
        precondition(vector.count == dimension, "vector has \(vector.count) dimensions, index has \(dimension)")
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if let old = numbers[id] { markDeleted(old) }
        insert(id: id, vector: vector)
        if Double(deletedCount) > parameters.compactionRatio * Double(ids.count), ids.count > 64 { rebuild() }
    }

    public func remove(id: String) {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard let number = numbers.removeValue(forKey: id) else { return }
        markDeleted(number)
        if Double(deletedCount) > parameters.compactionRatio * Double(ids.count), ids.count > 64 { rebuild() }
    }

    /// The `k` best live vectors for `query`. With `allowed`, only ids it accepts are returned;
    /// when `allowedFraction` (the share of vectors the filter accepts, if the caller knows it)
    /// is small, an exact scan of the accepted set replaces the graph walk, so a selective
    /// filter still yields `k` results when they exist.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, allowed: ((String) -> Bool)? = nil, allowedFraction: Double? = nil) -> [Hit] {
        precondition(query.count == dimension, "query has \(query.count) dimensions, index has \(dimension)")
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard k > 0, entry >= 0 else { return [] }
        if allowed != nil, let fraction = allowedFraction, fraction < 0.05 {
            return exactScan(query, k: k, allowed: allowed)
        }
        var current = entry
        var best = similarity(query, current)
        for level in stride(from: topLevel, to: 0, by: -1) {
            (current, best) = greedy(query, from: current, score: best, level: level)
        }
        var width = max(ef ?? parameters.efSearch, k)
        while true {
            let candidates = searchLayer(query, entry: current, entryScore: best, ef: width, level: 0)
            let hits = candidates.lazy.filter { !self.deleted[Int($0.node)] && (allowed?(self.ids[Int($0.node)]) ?? true) }
                .prefix(k).map { Hit(id: self.ids[Int($0.node)], score: $0.score) }
            // A filter or many tombstones can starve the walk: widen it, and at worst scan.
            if hits.count >= k || width >= ids.count { return Array(hits) }
            if width >= 4096 { return exactScan(query, k: k, allowed: allowed) }
            width *= 4
        }
    }

    /// Rebuilds the graph from the live vectors, dropping tombstones.
    public func compact() {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        rebuild()
    }

    // MARK: - Graph (callers hold the lock)

    private struct Candidate {
        var node: Int32
        var score: Float
    }

    private func markDeleted(_ number: Int32) {
        if !deleted[Int(number)] {
            deleted[Int(number)] = true
            deletedCount += 1
        }
    }

    private func rebuild() {
        let live = (0..<ids.count).filter { !deleted[$0] }
        let oldVectors = vectors
        let oldIDs = ids
        vectors = []
        ids = []
        numbers = [:]
        neighbors = []
        deleted = []
        deletedCount = 0
        entry = -1
        topLevel = -1
        vectors.reserveCapacity(live.count * dimension)
        for node in live {
            insert(id: oldIDs[node], vector: Array(oldVectors[(node * dimension)..<((node + 1) * dimension)]))
        }
    }

    private func insert(id: String, vector: [Float]) {
        let node = Int32(ids.count)
        ids.append(id)
        numbers[id] = node
        vectors.append(contentsOf: vector)
        deleted.append(false)
        let level = randomLevel()
        neighbors.append(Array(repeating: [], count: level + 1))
        guard entry >= 0 else {
            entry = node
            topLevel = level
            return
        }
        var current = entry
        var best = similarity(vector, current)
        if topLevel > level {
            for layer in stride(from: topLevel, to: level, by: -1) {
                (current, best) = greedy(vector, from: current, score: best, level: layer)
            }
        }
        for layer in stride(from: min(level, topLevel), through: 0, by: -1) {
            let candidates = searchLayer(vector, entry: current, entryScore: best, ef: parameters.efConstruction, level: layer)
            let limit = layer == 0 ? parameters.m * 2 : parameters.m
            let chosen = selectNeighbors(candidates, limit: parameters.m)
            neighbors[Int(node)][layer] = chosen.map(\.node)
            for neighbor in chosen {
                var links = neighbors[Int(neighbor.node)][layer]
                links.append(node)
                if links.count > limit {
                    let base = Int(neighbor.node) * dimension
                    let scored = links.map { Candidate(node: $0, score: dot(base, Int($0) * dimension)) }
                    links = selectNeighbors(scored.sorted { $0.score > $1.score }, limit: limit).map(\.node)
                }
                neighbors[Int(neighbor.node)][layer] = links
            }
            if let first = candidates.first {
                current = first.node
                best = first.score
            }
        }
        if level > topLevel {
            topLevel = level
            entry = node
        }
    }

    /// The heuristic of the HNSW paper: keep a candidate only if it is closer to the new node
    /// than to every neighbor kept so far, which keeps links spread across directions.
    /// `candidates` come sorted best first.
    private func selectNeighbors(_ candidates: [Candidate], limit: Int) -> [Candidate] {
        var kept: [Candidate] = []
        var skipped: [Candidate] = []
        for candidate in candidates {
            if kept.count >= limit { break }
            let base = Int(candidate.node) * dimension
            if kept.allSatisfy({ dot(base, Int($0.node) * dimension) < candidate.score }) {
                kept.append(candidate)
            } else {
                skipped.append(candidate)
            }
        }
        // Fill up with the best of the skipped, so small graphs stay connected.
        for candidate in skipped where kept.count < limit { kept.append(candidate) }
        return kept
    }

    private func greedy(_ query: [Float], from start: Int32, score: Float, level: Int) -> (Int32, Float) {
        var current = start
        var best = score
        var improved = true
        while improved {
            improved = false
            for neighbor in neighbors[Int(current)][level] {
                let candidate = similarity(query, neighbor)
                if candidate > best {
                    best = candidate
                    current = neighbor
                    improved = true
                }
            }
        }
        return (current, best)
    }

    /// Best-first search of one layer; returns up to `ef` nodes, best first.
    private func searchLayer(_ query: [Float], entry: Int32, entryScore: Float, ef: Int, level: Int) -> [Candidate] {
        // A flat bitset per search: searches run concurrently, so nothing here is shared.
        var visited = [UInt64](repeating: 0, count: (ids.count + 63) / 64)
        func firstVisit(_ node: Int32) -> Bool {
            let word = Int(node) >> 6
            let bit = UInt64(1) << UInt64(node & 63)
            if visited[word] & bit != 0 { return false }
            visited[word] |= bit
            return true
        }
        _ = firstVisit(entry)
        var frontier = CandidateHeap()
        frontier.push(Candidate(node: entry, score: entryScore))
        var results = [Candidate(node: entry, score: entryScore)]  // sorted best first, at most ef
        results.reserveCapacity(ef + 1)
        query.withUnsafeBufferPointer { query in
            vectors.withUnsafeBufferPointer { vectors in
                let base = vectors.baseAddress!
                while let next = frontier.pop() {
                    if results.count >= ef, let worst = results.last, next.score < worst.score { break }
                    for neighbor in neighbors[Int(next.node)][level] where firstVisit(neighbor) {
                        let score = Self.dot(query.baseAddress!, base + Int(neighbor) * dimension, dimension)
                        if results.count < ef || score > results.last!.score {
                            insertSorted(&results, Candidate(node: neighbor, score: score))
                            if results.count > ef { results.removeLast() }
                            frontier.push(Candidate(node: neighbor, score: score))
                        }
                    }
                }
            }
        }
        return results
    }

    /// A binary max-heap of candidates by score.
    private struct CandidateHeap {
        private var items: [Candidate] = []

        mutating func push(_ candidate: Candidate) {
            items.append(candidate)
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                if items[parent].score >= items[child].score { break }
                items.swapAt(parent, child)
                child = parent
            }
        }

        mutating func pop() -> Candidate? {
            guard !items.isEmpty else { return nil }
            items.swapAt(0, items.count - 1)
            let top = items.removeLast()
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var largest = parent
                if left < items.count, items[left].score > items[largest].score { largest = left }
                if right < items.count, items[right].score > items[largest].score { largest = right }
                if largest == parent { break }
                items.swapAt(parent, largest)
                parent = largest
            }
            return top
        }
    }

    private func exactScan(_ query: [Float], k: Int, allowed: ((String) -> Bool)?) -> [Hit] {
        var results: [Candidate] = []
        for node in 0..<ids.count where !deleted[node] && (allowed?(ids[node]) ?? true) {
            let score = similarity(query, Int32(node))
            if results.count < k || score > results.last!.score {
                insertSorted(&results, Candidate(node: Int32(node), score: score))
                if results.count > k { results.removeLast() }
            }
        }
        return results.map { Hit(id: ids[Int($0.node)], score: $0.score) }
    }

    /// Keeps `list` sorted best first.
    private func insertSorted(_ list: inout [Candidate], _ candidate: Candidate) {
        var low = 0
        var high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].score >= candidate.score { low = middle + 1 } else { high = middle }
        }
        list.insert(candidate, at: low)
    }

    private func randomLevel() -> Int {
        let scale = 1 / log(Double(parameters.m))
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &generator)
        return min(Int(-log(uniform) * scale), 16)
    }

    private func similarity(_ query: [Float], _ node: Int32) -> Float {
        query.withUnsafeBufferPointer { query in
            vectors.withUnsafeBufferPointer { vectors in
                Self.dot(query.baseAddress!, vectors.baseAddress! + Int(node) * dimension, dimension)
            }
        }
    }

    private func dot(_ first: Int, _ second: Int) -> Float {
        vectors.withUnsafeBufferPointer { Self.dot($0.baseAddress! + first, $0.baseAddress! + second, dimension) }
    }

    /// Inner product, eight lanes at a time.
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var sum = SIMD8<Float>()
        var index = 0
        while index + 8 <= count {
            let x = UnsafeRawPointer(a + index).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(b + index).loadUnaligned(as: SIMD8<Float>.self)
            sum += x * y
            index += 8
        }
        var total = sum.sum()
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }
}
