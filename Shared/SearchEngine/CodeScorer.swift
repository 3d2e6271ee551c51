import CSearchKernels
import Foundation

struct CodeScorer: Scorer {
    let codes: UnsafePointer<UInt8>
    let query: UnsafePointer<Int16>
    let multiplier: Float
    let offset: Float
    let dimension: Int

    init(graph: HNSWGraph, query: UnsafePointer<Int16>, multiplier: Float, offset: Float) {
        codes = UnsafePointer(graph.codes.base)
        self.query = query
        self.multiplier = multiplier
        self.offset = offset
        dimension = graph.dimension
    }

    @inline(__always)
    func score(_ node: Int32) -> Float {
        offset + multiplier * Float(Kernels.dot(query, codes: codes + Int(node) * dimension, dimension))
    }

    /// Every cache line of the codes (six for 384 dimensions).
    @inline(__always)
    func prefetch(_ node: Int32) {
        let start = UnsafeRawPointer(codes + Int(node) * dimension)
        for line in 0..<((dimension + 63) / 64) { conduit_prefetch(start + line * 64) }
    }
}
