import Foundation

extension MiniLMModel {
    /// Embeds on up to `threads` threads. The batch is split into parts of about equal work,
    /// each run on its own thread with single-threaded BLAS: for matrices this small, splitting
    /// the batch scales better than threading each product. Blocks the calling thread.
    public func embed(_ sequences: [[Int]], threads: Int) -> [[Float]] {
        let parts = Self.split(sequences.map(\.count), into: max(1, min(threads, sequences.count)))
        if parts.count <= 1 { return embed(sequences) }
        let results = PartResults(count: parts.count)
        DispatchQueue.concurrentPerform(iterations: parts.count) { part in
            results.store(embed(parts[part].map { sequences[$0] }), at: part)
        }
        var vectors = [[Float]](repeating: [], count: sequences.count)
        for (part, indices) in parts.enumerated() {
            for (index, vector) in zip(indices, results.value(at: part)) { vectors[index] = vector }
        }
        return vectors
    }

    /// Indices of the sequences grouped into `count` parts of about equal cost.
    static func split(_ lengths: [Int], into count: Int) -> [[Int]] {
        guard count > 1 else { return [Array(lengths.indices)] }
        var parts = [[Int]](repeating: [], count: count)
        var loads = [Int](repeating: 0, count: count)
        // Longest first, each to the lightest part; attention grows with length squared.
        for index in lengths.indices.sorted(by: { lengths[$0] > lengths[$1] }) {
            let lightest = loads.indices.min { loads[$0] < loads[$1] }!
            parts[lightest].append(index)
            loads[lightest] += lengths[index] * lengths[index] + 24 * lengths[index]
        }
        return parts.filter { !$0.isEmpty }
    }
}

/// Per-part results written by concurrent workers.
///
/// `@unchecked Sendable`: each worker writes only its own slot, under the lock, and the
/// reader runs after `concurrentPerform` has returned.
private final class PartResults: @unchecked Sendable {
    private var parts: [[[Float]]]
    private let lock = NSLock()

    init(count: Int) { parts = Array(repeating: [], count: count) }

    func store(_ vectors: [[Float]], at part: Int) {
        lock.lock()
        parts[part] = vectors
        lock.unlock()
    }

    func value(at part: Int) -> [[Float]] {
        lock.lock()
        defer { lock.unlock() }
        return parts[part]
    }
}
