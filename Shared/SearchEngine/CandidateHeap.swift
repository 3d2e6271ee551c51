import CSearchKernels
import Foundation

/// A binary max-heap of candidates by score.
struct CandidateHeap {
    private var items: [HNSWGraph.Candidate] = []

    var count: Int { items.count }
    var top: HNSWGraph.Candidate? { items.first }

    mutating func push(_ candidate: HNSWGraph.Candidate) {
        items.append(candidate)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent].score >= items[child].score { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> HNSWGraph.Candidate? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown()
        }
        return top
    }

    mutating func replaceTop(_ candidate: HNSWGraph.Candidate) {
        items[0] = candidate
        siftDown()
    }

    private mutating func siftDown() {
        var parent = 0
        let size = items.count
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var largest = parent
            if left < size, items[left].score > items[largest].score { largest = left }
            if right < size, items[right].score > items[largest].score { largest = right }
            if largest == parent { return }
            items.swapAt(parent, largest)
            parent = largest
        }
    }

    /// For a heap of negated scores: the candidates best first, scores restored.
    mutating func drainBestFirstNegated() -> [HNSWGraph.Candidate] {
        var out: [HNSWGraph.Candidate] = []
        out.reserveCapacity(items.count)
        while let next = pop() { out.append(HNSWGraph.Candidate(node: next.node, score: -next.score)) }
        return out.reversed()
    }
}
