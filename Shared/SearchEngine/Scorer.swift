import CSearchKernels
import Foundation

/// Scores a node against the query being searched or inserted.
protocol Scorer {
    func score(_ node: Int32) -> Float
    func prefetch(_ node: Int32)
}
