import CSearchKernels
import Foundation

struct FloatScorer: Scorer {
    let vectors: UnsafePointer<Float>
    let query: UnsafePointer<Float>
    let dimension: Int

    init(graph: HNSWGraph, query: UnsafePointer<Float>) {
        vectors = UnsafePointer(graph.vectors.base)
        self.query = query
        dimension = graph.dimension
    }

    @inline(__always)
    func score(_ node: Int32) -> Float { Kernels.dot(query, vectors + Int(node) * dimension, dimension) }

    /// The first 256 bytes; the hardware's stream prefetcher follows on for the rest.
    @inline(__always)
    func prefetch(_ node: Int32) {
        let start = UnsafeRawPointer(vectors + Int(node) * dimension)
        for line in 0..<min(4, (dimension * 4 + 63) / 64) { conduit_prefetch(start + line * 64) }
    }
}
