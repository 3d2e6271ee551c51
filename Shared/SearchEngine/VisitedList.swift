import CSearchKernels
import Foundation

/// Which nodes a search has seen: one tag per node, reset in O(1) by moving to a new tag.
/// `@unchecked Sendable`: used by one search at a time — ``VectorIndex`` lends each list out
/// of its pool under a mutex and takes it back when the search ends; inserts use their own
/// under the write lock.
final class VisitedList: @unchecked Sendable {
    private var tags: UnsafeMutablePointer<UInt16>
    private var capacity: Int
    private var tag: UInt16 = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        tags = .allocate(capacity: self.capacity)
        tags.initialize(repeating: 0, count: self.capacity)
    }

    deinit { tags.deallocate() }

    func reset(count: Int) {
        if count > capacity {
            tags.deallocate()
            capacity = max(count, capacity * 2)
            tags = .allocate(capacity: capacity)
            tags.initialize(repeating: 0, count: capacity)
            tag = 0
        }
        tag &+= 1
        if tag == 0 {
            tags.update(repeating: 0, count: capacity)
            tag = 1
        }
    }

    @inline(__always)
    func contains(_ node: Int32) -> Bool { tags[Int(node)] == tag }

    /// True the first time `node` is seen since the last reset.
    @inline(__always)
    func insert(_ node: Int32) -> Bool {
        if tags[Int(node)] == tag { return false }
        tags[Int(node)] = tag
        return true
    }
}
