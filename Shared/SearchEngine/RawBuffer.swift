import Foundation

/// A growable, manually freed buffer of plain values: the HNSW graph keeps every per-node array
/// in one of these so the search loop reads raw memory, with no array bounds checks, no
/// reference counting and no copy-on-write checks per visited node.
///
/// Not a value type in spirit: copies share memory and the owner calls `free()` exactly once.
struct RawBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        base = UnsafeMutablePointer<Element>.allocate(capacity: self.capacity)
    }

    /// Makes room for `count` elements, keeping the first `keeping` (doubling, so appends are
    /// amortised O(1)). Untouched capacity costs address space, not resident memory.
    mutating func reserve(_ count: Int, keeping: Int) {
        guard count > capacity else { return }
        let grown = max(count, capacity * 2)
        let fresh = UnsafeMutablePointer<Element>.allocate(capacity: grown)
        fresh.update(from: base, count: keeping)
        base.deallocate()
        base = fresh
        capacity = grown
    }

    func free() { base.deallocate() }

    var bytes: Int { capacity * MemoryLayout<Element>.stride }

    subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }
}
