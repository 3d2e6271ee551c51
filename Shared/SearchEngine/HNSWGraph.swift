import CSearchKernels
import Foundation

/// The HNSW graph itself: storage and algorithms, no locking (``VectorIndex`` owns the lock).
///
/// Every per-node array is a ``RawBuffer`` so the search loop touches only raw memory. Layer 0
/// keeps `2M` links per node in one flat array (`[count, link, link, …]` per node); the few
/// nodes above layer 0 keep `M` links per extra layer in a shared pool.
final class HNSWGraph {
    let dimension: Int
    let parameters: VectorIndex.Parameters
    let stride0: Int
    let strideUpper: Int

    private(set) var count = 0
    private(set) var deletedCount = 0
    var entry: Int32 = -1
    var topLevel = -1

    var vectors: RawBuffer<Float>
    var links0: RawBuffer<Int32>
    var levels: RawBuffer<UInt8>
    var labels: RawBuffer<UInt32>
    var deleted: RawBuffer<UInt8>
    /// Offset of a node's upper layers in `upperPool`, or -1 for a layer-0-only node.
    var upperOffset: RawBuffer<Int32>
    var upperPool: RawBuffer<Int32>
    var upperPoolCount = 0
    var codes: RawBuffer<UInt8>
    var quantizer: ScalarQuantizer?
    var nodeOfLabel: [UInt32: Int32] = [:]
    private var generator = SystemRandomNumberGenerator()
    /// Inserts are exclusive (the index's write lock), so they share one.
    private let insertVisited = VisitedList(capacity: 64)

    /// Vectors seen before the quantizer learns its ranges.
    static let quantizerSample = 1000

    init(dimension: Int, parameters: VectorIndex.Parameters, capacity: Int = 64) {
        self.dimension = dimension
        self.parameters = parameters
        stride0 = 2 * parameters.m + 1
        strideUpper = parameters.m + 1
        vectors = RawBuffer(capacity: capacity * dimension)
        links0 = RawBuffer(capacity: capacity * stride0)
        levels = RawBuffer(capacity: capacity)
        labels = RawBuffer(capacity: capacity)
        deleted = RawBuffer(capacity: capacity)
        upperOffset = RawBuffer(capacity: capacity)
        upperPool = RawBuffer(capacity: max(16, capacity / parameters.m) * strideUpper)
        codes = RawBuffer(capacity: parameters.quantization == .int8 ? capacity * dimension : 1)
    }

    deinit {
        vectors.free()
        links0.free()
        levels.free()
        labels.free()
        deleted.free()
        upperOffset.free()
        upperPool.free()
        codes.free()
    }

    var liveCount: Int { count - deletedCount }

    var memoryBytes: Int {
        vectors.bytes + links0.bytes + levels.bytes + labels.bytes + deleted.bytes + upperOffset.bytes
            + upperPool.bytes + (quantizer == nil ? 0 : codes.bytes)
            + nodeOfLabel.capacity * (MemoryLayout<UInt32>.stride + MemoryLayout<Int32>.stride + 1)
    }

    func reserve(_ nodes: Int) {
        vectors.reserve(nodes * dimension, keeping: count * dimension)
        links0.reserve(nodes * stride0, keeping: count * stride0)
        levels.reserve(nodes, keeping: count)
        labels.reserve(nodes, keeping: count)
        deleted.reserve(nodes, keeping: count)
        upperOffset.reserve(nodes, keeping: count)
        if parameters.quantization == .int8 { codes.reserve(nodes * dimension, keeping: count * dimension) }
        nodeOfLabel.reserveCapacity(nodes)
    }

    /// Adopts arrays filled by a snapshot reader, checking that every link stays in range.
    func restore(count: Int, upperPoolCount: Int, entry: Int32, topLevel: Int) throws {
        let corrupt = VectorIndex.SnapshotError(code: .truncated, detail: "links out of range")
        guard count == 0 ? entry == -1 : (0..<Int32(count)).contains(entry), topLevel <= 16 else { throw corrupt }
        self.count = count
        self.upperPoolCount = upperPoolCount
        self.entry = entry
        self.topLevel = topLevel
        deletedCount = 0
        nodeOfLabel = [:]
        nodeOfLabel.reserveCapacity(count)
        for node in 0..<count {
            let level = Int(levels[node])
            let offset = Int(upperOffset[node])
            guard level <= 16, level == 0 || (offset >= 0 && offset + level * strideUpper <= upperPoolCount) else { throw corrupt }
            for layer in 0...level {
                let list = links(Int32(node), layer: layer)
                let size = Int(list[0])
                guard size <= (layer == 0 ? 2 * parameters.m : parameters.m) else { throw corrupt }
                for index in 0..<size where !(0..<Int32(count)).contains(list[index + 1]) { throw corrupt }
            }
            if deleted[node] == 0 { nodeOfLabel[labels[node]] = Int32(node) } else { deletedCount += 1 }
        }
    }

    // MARK: - Updates

    func markDeleted(label: UInt32) {
        guard let node = nodeOfLabel.removeValue(forKey: label) else { return }
        if deleted[Int(node)] == 0 {
            deleted[Int(node)] = 1
            deletedCount += 1
        }
    }

    /// Adds a unit vector under `label` (an existing node with that label must be deleted first).
    func insert(label: UInt32, vector: UnsafePointer<Float>) {
        let node = Int32(count)
        if count == labels.capacity { reserve(count + 1) }
        count += 1
        (vectors.base + Int(node) * dimension).update(from: vector, count: dimension)
        labels[Int(node)] = label
        deleted[Int(node)] = 0
        nodeOfLabel[label] = node
        let level = randomLevel()
        levels[Int(node)] = UInt8(level)
        links0[Int(node) * stride0] = 0
        if level > 0 {
            let needed = upperPoolCount + level * strideUpper
            upperPool.reserve(needed, keeping: upperPoolCount)
            upperOffset[Int(node)] = Int32(upperPoolCount)
            for layer in 1...level { upperPool[upperPoolCount + (layer - 1) * strideUpper] = 0 }
            upperPoolCount = needed
        } else {
            upperOffset[Int(node)] = -1
        }
        encodeIfQuantized(node)

        guard entry >= 0 else {
            entry = node
            topLevel = level
            return
        }
        let scorer = FloatScorer(graph: self, query: vector)
        var current = entry
        var best = scorer.score(current)
        if topLevel > level {
            for layer in stride(from: topLevel, to: level, by: -1) {
                (current, best) = greedy(scorer, from: current, score: best, level: layer)
            }
        }
        for layer in stride(from: min(level, topLevel), through: 0, by: -1) {
            let candidates = searchLayer(scorer, entry: current, entryScore: best, ef: parameters.efConstruction,
                                         level: layer, visited: insertVisited, accept: nil)
            let chosen = selectNeighbors(candidates, limit: parameters.m)
            setLinks(node, layer: layer, chosen.map(\.node))
            let limit = layer == 0 ? 2 * parameters.m : parameters.m
            for neighbor in chosen { link(neighbor.node, to: node, layer: layer, limit: limit) }
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

    private func encodeIfQuantized(_ node: Int32) {
        guard parameters.quantization == .int8 else { return }
        if let quantizer {
            quantizer.encode(vectors.base + Int(node) * dimension, into: codes.base + Int(node) * dimension)
        } else if count >= Self.quantizerSample {
            train()
        }
    }

    /// Learns the quantizer's ranges from the vectors so far and encodes them all.
    func train() {
        let quantizer = ScalarQuantizer(sample: vectors.base, count: count, dimension: dimension)
        codes.reserve(max(count, labels.capacity) * dimension, keeping: 0)
        for node in 0..<count {
            quantizer.encode(vectors.base + node * dimension, into: codes.base + node * dimension)
        }
        self.quantizer = quantizer
    }

    /// Adds `node` to `target`'s links; past `limit`, keeps the heuristic's choice.
    private func link(_ target: Int32, to node: Int32, layer: Int, limit: Int) {
        let list = links(target, layer: layer)
        let size = Int(list[0])
        if size < limit {
            list[size + 1] = node
            list[0] = Int32(size + 1)
            return
        }
        let base = vectors.base + Int(target) * dimension
        var scored = (0..<size).map { index in
            let neighbor = list[index + 1]
            return Candidate(node: neighbor, score: Kernels.dot(base, vectors.base + Int(neighbor) * dimension, dimension))
        }
        scored.append(Candidate(node: node, score: Kernels.dot(base, vectors.base + Int(node) * dimension, dimension)))
        scored.sort { $0.score > $1.score }
        setLinks(target, layer: layer, selectNeighbors(scored, limit: limit).map(\.node))
    }

    private func setLinks(_ node: Int32, layer: Int, _ nodes: [Int32]) {
        let list = links(node, layer: layer)
        list[0] = Int32(nodes.count)
        for (index, neighbor) in nodes.enumerated() { list[index + 1] = neighbor }
    }

    /// `[count, link…]` of `node` on `layer`.
    @inline(__always)
    func links(_ node: Int32, layer: Int) -> UnsafeMutablePointer<Int32> {
        if layer == 0 { return links0.base + Int(node) * stride0 }
        return upperPool.base + Int(upperOffset[Int(node)]) + (layer - 1) * strideUpper
    }

    /// The HNSW paper's heuristic: keep a candidate only if it is closer to the new node than
    /// to every neighbour kept so far, which spreads links across directions; fill up with the
    /// best of the rest so small graphs stay connected. `candidates` come best first.
    private func selectNeighbors(_ candidates: [Candidate], limit: Int) -> [Candidate] {
        if candidates.count <= limit { return candidates }
        var kept: [Candidate] = []
        var skipped: [Candidate] = []
        kept.reserveCapacity(limit)
        for candidate in candidates {
            if kept.count >= limit { break }
            let base = vectors.base + Int(candidate.node) * dimension
            if kept.allSatisfy({ Kernels.dot(base, vectors.base + Int($0.node) * dimension, dimension) < candidate.score }) {
                kept.append(candidate)
            } else {
                skipped.append(candidate)
            }
        }
        // Filling up costs build time but buys more recall per visited node than it costs
        // (measured on the benchmark's clustered data: recall 0.957 vs 0.945 at efSearch 16).
        for candidate in skipped where kept.count < limit { kept.append(candidate) }
        return kept
    }

    private func randomLevel() -> Int {
        let scale = 1 / log(Double(parameters.m))
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &generator)
        return min(Int(-log(uniform) * scale), 16)
    }

    // MARK: - Search

    struct Candidate {
        var node: Int32
        var score: Float
    }

    /// The `k` best live nodes for a unit `query`, best first, with exact float scores.
    /// `accept` filters by label during the walk; `exhaustive` scans instead of walking.
    func search(_ query: [Float], k: Int, ef: Int, accept: ((UInt32) -> Bool)?, visited: VisitedList) -> [Candidate] {
        guard k > 0, entry >= 0 else { return [] }
        let width = max(ef, k)
        return query.withUnsafeBufferPointer { buffer in
            let floats = FloatScorer(graph: self, query: buffer.baseAddress!)
            if let quantizer {
                let (scaled, multiplier, offset) = quantizer.prepare(query)
                return scaled.withUnsafeBufferPointer { scaled in
                    let coded = CodeScorer(graph: self, query: scaled.baseAddress!, multiplier: multiplier, offset: offset)
                    let found = walk(coded, ef: width, accept: accept, visited: visited)
                    // Rescore the beam with the float vectors: the codes only steer the walk.
                    for candidate in found { floats.prefetch(candidate.node) }
                    let rescored = found.map { Candidate(node: $0.node, score: floats.score($0.node)) }
                    return Array(rescored.sorted { $0.score > $1.score }.prefix(k))
                }
            }
            return Array(walk(floats, ef: width, accept: accept, visited: visited).prefix(k))
        }
    }

    private func walk<S: Scorer>(_ scorer: S, ef: Int, accept: ((UInt32) -> Bool)?, visited: VisitedList) -> [Candidate] {
        var current = entry
        var best = scorer.score(current)
        for level in stride(from: topLevel, to: 0, by: -1) {
            (current, best) = greedy(scorer, from: current, score: best, level: level)
        }
        let needsCheck = accept != nil || deletedCount > 0
        return searchLayer(scorer, entry: current, entryScore: best, ef: ef, level: 0, visited: visited,
                           accept: needsCheck ? { [deleted, labels] node in
                               deleted[Int(node)] == 0 && (accept?(labels[Int(node)]) ?? true)
                           } : nil)
    }

    /// Every accepted live node, scored exactly: for filters too selective for a walk.
    func exactScan(_ query: [Float], k: Int, accept: ((UInt32) -> Bool)?) -> [Candidate] {
        query.withUnsafeBufferPointer { buffer in
            let scorer = FloatScorer(graph: self, query: buffer.baseAddress!)
            var results = CandidateHeap()
            for node in 0..<count where deleted[node] == 0 && (accept?(labels[node]) ?? true) {
                let score = scorer.score(Int32(node))
                if results.count < k {
                    results.push(Candidate(node: Int32(node), score: -score))
                } else if -score < results.top!.score {
                    results.replaceTop(Candidate(node: Int32(node), score: -score))
                }
            }
            return results.drainBestFirstNegated()
        }
    }

    private func greedy<S: Scorer>(_ scorer: S, from start: Int32, score: Float, level: Int) -> (Int32, Float) {
        var current = start
        var best = score
        var improved = true
        while improved {
            improved = false
            let list = links(current, layer: level)
            let size = Int(list[0])
            var ahead = 1
            while ahead <= size {
                scorer.prefetch(list[ahead])
                ahead += 1
            }
            var index = 1
            while index <= size {
                let neighbor = list[index]
                index += 1
                let candidate = scorer.score(neighbor)
                if candidate > best {
                    best = candidate
                    current = neighbor
                    improved = true
                }
            }
        }
        return (current, best)
    }

    /// Best-first search of one layer: up to `ef` accepted nodes, best first. Rejected nodes
    /// (filtered out or deleted) still route the walk but never enter the results.
    func searchLayer<S: Scorer>(_ scorer: S, entry: Int32, entryScore: Float, ef: Int, level: Int,
                                visited: VisitedList, accept: ((Int32) -> Bool)?) -> [Candidate] {
        visited.reset(count: count)
        _ = visited.insert(entry)
        var frontier = CandidateHeap()
        var results = CandidateHeap()  // negated scores: the top is the worst kept
        frontier.push(Candidate(node: entry, score: entryScore))
        if accept?(entry) ?? true { results.push(Candidate(node: entry, score: -entryScore)) }
        var worst = results.count >= ef ? -results.top!.score : -Float.infinity
        while let next = frontier.pop() {
            if next.score < worst, results.count >= ef { break }
            // The node after this one most likely comes from the heap's top: fetch its links.
            if let upcoming = frontier.top { conduit_prefetch(links(upcoming.node, layer: level)) }
            let list = links(next.node, layer: level)
            let size = Int(list[0])
            // Ask for every unseen neighbour's vector at once: their cache misses then overlap
            // instead of each stalling its own distance computation.
            var ahead = 1
            while ahead <= size {
                if !visited.contains(list[ahead]) { scorer.prefetch(list[ahead]) }
                ahead += 1
            }
            var index = 1
            while index <= size {
                let neighbor = list[index]
                index += 1
                guard visited.insert(neighbor) else { continue }
                let score = scorer.score(neighbor)
                guard results.count < ef || score > worst else { continue }
                frontier.push(Candidate(node: neighbor, score: score))
                guard accept?(neighbor) ?? true else { continue }
                if results.count < ef {
                    results.push(Candidate(node: neighbor, score: -score))
                } else {
                    results.replaceTop(Candidate(node: neighbor, score: -score))
                }
                if results.count >= ef { worst = -results.top!.score }
            }
        }
        return results.drainBestFirstNegated()
    }
}
