/// Vectors kept as they arrive and searched by exact scan: for entries that must be searchable
/// at once, before a graph has taken them (the semantic cache's warm start reads 100,000
/// entries in seconds, while inserting them into a graph takes a minute).
///
/// Vectors live in blocks of `blockSize`. A copy shares the blocks, so a reader's snapshot costs
/// nothing, an append copies at most the last block, and dropping the oldest block after it
/// went into a graph is cheap.
public struct FlatVectors: Sendable {
    public struct Block: Sendable {
        public fileprivate(set) var labels: [UInt32] = []
        /// Unit vectors, `dimension` components each, back to back.
        fileprivate(set) var values: [Float] = []

        public var count: Int { labels.count }

        /// The unit vector at `position`.
        public func vector(at position: Int, dimension: Int) -> [Float] {
            Array(values[(position * dimension)..<((position + 1) * dimension)])
        }

        fileprivate mutating func append(label: UInt32, unit: [Float]) {
            labels.append(label)
            values.append(contentsOf: unit)
        }
    }

    public static let blockSize = 1024

    public let dimension: Int
    public private(set) var blocks: [Block] = []
    public private(set) var count = 0

    public init(dimension: Int) {
        self.dimension = dimension
    }

    public var isEmpty: Bool { count == 0 }

    /// Adds a vector (normalised to unit length; it must have `dimension` components).
    public mutating func append(label: UInt32, vector: [Float]) {
        precondition(vector.count == dimension, "vector has \(vector.count) dimensions, the set has \(dimension)")
        var unit = vector
        Kernels.normalize(&unit)
        if blocks.isEmpty || blocks[blocks.count - 1].count == Self.blockSize {
            var block = Block()
            block.labels.reserveCapacity(Self.blockSize)
            block.values.reserveCapacity(Self.blockSize * dimension)
            blocks.append(block)
        }
        blocks[blocks.count - 1].append(label: label, unit: unit)
        count += 1
    }

    /// Drops the oldest block (once a graph holds its vectors).
    public mutating func removeFirstBlock() {
        guard !blocks.isEmpty else { return }
        count -= blocks.removeFirst().count
    }

    /// The `k` most similar vectors (cosine), best first, by a scan of every one.
    public func search(_ query: [Float], k: Int) -> [VectorIndex.Hit] {
        precondition(query.count == dimension, "query has \(query.count) dimensions, the set has \(dimension)")
        guard k > 0, count > 0 else { return [] }
        var unit = query
        Kernels.normalize(&unit)
        var best: [VectorIndex.Hit] = []
        best.reserveCapacity(k + 1)
        unit.withUnsafeBufferPointer { query in
            for block in blocks {
                block.values.withUnsafeBufferPointer { values in
                    for position in 0..<block.count {
                        let score = Kernels.dot(query.baseAddress!, values.baseAddress! + position * dimension, dimension)
                        guard best.count < k || score > best[best.count - 1].score else { continue }
                        let hit = VectorIndex.Hit(label: block.labels[position], score: score)
                        let place = best.firstIndex { $0.score < score } ?? best.count
                        best.insert(hit, at: place)
                        if best.count > k { best.removeLast() }
                    }
                }
            }
        }
        return best
    }
}
