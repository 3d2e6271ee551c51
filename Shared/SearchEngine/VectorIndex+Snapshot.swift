import Foundation

/// Snapshots: the whole graph in one file, read back through `mmap`.
///
/// Layout (little-endian, this machine's layout of the arrays): the 8-byte magic
/// `CNDTHNSW`, a format version, the parameters and sizes, then each array as one section, and
/// last a 64-bit checksum over everything before it. A file is written beside its target and
/// renamed over it, so a crash mid-write leaves the previous snapshot intact.
extension VectorIndex {
    public struct SnapshotError: Error, CustomStringConvertible, Equatable {
        public enum Code: String, Sendable {
            case notASnapshot = "not a vector index snapshot"
            case unsupportedVersion = "snapshot format version not supported"
            case truncated = "snapshot is truncated or its sizes are inconsistent"
            case checksumMismatch = "snapshot checksum does not match its contents"
            case io = "snapshot file could not be read or written"
        }

        public var code: Code
        public var detail: String

        public var description: String { detail.isEmpty ? code.rawValue : "\(code.rawValue): \(detail)" }
    }

    static let snapshotMagic: UInt64 = 0x5753_4E48_5444_4E43  // "CNDTHNSW" read as little-endian
    static let snapshotVersion: UInt32 = 1

    /// Writes the index to `url` (atomically: a temporary file renamed over it). Searches go on
    /// meanwhile; updates wait.
    public func write(to url: URL) throws {
        try reading { try graph.write(to: url) }
    }

    /// Reads an index written by ``write(to:)``, checking its version, sizes and checksum.
    public static func load(from url: URL) throws -> VectorIndex {
        VectorIndex(graph: try HNSWGraph.load(from: url))
    }
}

extension HNSWGraph {
    func write(to url: URL) throws {
        let temporary = url.path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw snapshotIOError("open \(temporary)") }
        var writer = SnapshotWriter(descriptor: descriptor)
        do {
            try writer.header(self)
            try writer.section(labels.base, count)
            try writer.section(levels.base, count)
            try writer.section(deleted.base, count)
            try writer.section(upperOffset.base, count)
            try writer.section(vectors.base, count * dimension)
            try writer.section(links0.base, count * stride0)
            try writer.section(upperPool.base, upperPoolCount)
            if let quantizer {
                try quantizer.minimum.withUnsafeBufferPointer { try writer.section($0.baseAddress!, dimension) }
                try quantizer.scale.withUnsafeBufferPointer { try writer.section($0.baseAddress!, dimension) }
                try writer.section(codes.base, count * dimension)
            }
            try writer.finish()
            guard fsync(descriptor) == 0 else { throw snapshotIOError("fsync") }
            close(descriptor)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, url.path) == 0 else {
            unlink(temporary)
            throw snapshotIOError("rename to \(url.path)")
        }
    }

    static func load(from url: URL) throws -> HNSWGraph {
        let descriptor = open(url.path, O_RDONLY)
        guard descriptor >= 0 else { throw snapshotIOError("open \(url.path)") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw snapshotIOError("stat") }
        let size = Int(status.st_size)
        guard size >= SnapshotReader.headerSize + 8 else { throw VectorIndex.SnapshotError(code: .truncated, detail: "\(size) bytes") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            throw snapshotIOError("mmap")
        }
        defer { munmap(mapped, size) }
        var reader = SnapshotReader(base: UnsafeRawPointer(mapped), size: size)
        return try reader.graph()
    }
}

private func snapshotIOError(_ what: String) -> VectorIndex.SnapshotError {
    VectorIndex.SnapshotError(code: .io, detail: "\(what): \(String(cString: strerror(errno)))")
}

/// A running 64-bit checksum: words are mixed in with a multiply and rotate (fast enough to
/// check a few hundred megabytes at load), sections chained by their lengths.
private struct Checksum {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var hash = value ^ UInt64(bytes.count)
        let words = bytes.count / 8
        for index in 0..<words {
            hash = (hash ^ bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            hash = (hash << 31) | (hash >> 33)
        }
        for index in (words * 8)..<bytes.count {
            hash = (hash ^ UInt64(bytes[index])) &* 0x100_0000_01B3
        }
        value = hash
    }
}

private struct SnapshotWriter {
    let descriptor: Int32
    var checksum = Checksum()

    mutating func header(_ graph: HNSWGraph) throws {
        var fields: [UInt64] = [
            VectorIndex.snapshotMagic, UInt64(VectorIndex.snapshotVersion),
            UInt64(graph.dimension), UInt64(graph.parameters.m), UInt64(graph.parameters.efConstruction),
            UInt64(graph.parameters.efSearch), graph.parameters.compactionRatio.bitPattern,
            graph.parameters.quantization == .int8 ? 1 : 0,
            UInt64(graph.count), UInt64(UInt32(bitPattern: graph.entry)), UInt64(Int64(graph.topLevel) + 1),
            UInt64(graph.upperPoolCount), graph.quantizer == nil ? 0 : 1,
        ]
        try fields.withUnsafeMutableBytes { try bytes(UnsafeRawBufferPointer($0)) }
    }

    mutating func section<T>(_ pointer: UnsafePointer<T>, _ count: Int) throws {
        try bytes(UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<T>.stride))
    }

    mutating func section<T>(_ pointer: UnsafeMutablePointer<T>, _ count: Int) throws {
        try section(UnsafePointer(pointer), count)
    }

    mutating func finish() throws {
        var sum = checksum.value
        try withUnsafeBytes(of: &sum) { try write($0) }
    }

    private mutating func bytes(_ buffer: UnsafeRawBufferPointer) throws {
        checksum.add(buffer)
        try write(buffer)
    }

    private func write(_ buffer: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < buffer.count {
            let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw snapshotIOError("write")
            }
            offset += written
        }
    }
}

private struct SnapshotReader {
    static let headerSize = 13 * 8
    let base: UnsafeRawPointer
    let size: Int
    var offset = 0
    var checksum = Checksum()

    init(base: UnsafeRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    mutating func graph() throws -> HNSWGraph {
        let header = try take(Self.headerSize)
        checksum.add(header)
        func field(_ index: Int) -> UInt64 { header.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) }
        guard field(0) == VectorIndex.snapshotMagic else { throw VectorIndex.SnapshotError(code: .notASnapshot, detail: "") }
        guard field(1) == UInt64(VectorIndex.snapshotVersion) else {
            throw VectorIndex.SnapshotError(code: .unsupportedVersion, detail: "version \(field(1))")
        }
        let dimension = Int(field(2))
        let count = Int(field(8))
        let upperPoolCount = Int(field(11))
        guard (1...65_536).contains(dimension), (2...128).contains(Int(field(3))),
              count * dimension * MemoryLayout<Float>.stride <= size, upperPoolCount * 4 <= size else {
            throw VectorIndex.SnapshotError(code: .truncated, detail: "implausible sizes")
        }
        let parameters = VectorIndex.Parameters(
            m: Int(field(3)), efConstruction: Int(field(4)), efSearch: Int(field(5)),
            compactionRatio: Double(bitPattern: field(6)), quantization: field(7) == 1 ? .int8 : .none)
        let graph = HNSWGraph(dimension: dimension, parameters: parameters, capacity: max(count, 1))
        let quantized = field(12) == 1
        try read(into: graph.labels.base, count)
        try read(into: graph.levels.base, count)
        try read(into: graph.deleted.base, count)
        try read(into: graph.upperOffset.base, count)
        try read(into: graph.vectors.base, count * dimension)
        try read(into: graph.links0.base, count * graph.stride0)
        graph.upperPool.reserve(upperPoolCount, keeping: 0)
        try read(into: graph.upperPool.base, upperPoolCount)
        if quantized {
            var minimum = [Float](repeating: 0, count: dimension)
            var scale = [Float](repeating: 0, count: dimension)
            try minimum.withUnsafeMutableBufferPointer { try read(into: $0.baseAddress!, dimension) }
            try scale.withUnsafeMutableBufferPointer { try read(into: $0.baseAddress!, dimension) }
            graph.codes.reserve(count * dimension, keeping: 0)
            try read(into: graph.codes.base, count * dimension)
            graph.quantizer = ScalarQuantizer(minimum: minimum, scale: scale)
        }
        let stored = try take(8).loadUnaligned(as: UInt64.self)
        guard offset == size else { throw VectorIndex.SnapshotError(code: .truncated, detail: "\(size - offset) bytes left over") }
        guard stored == checksum.value else { throw VectorIndex.SnapshotError(code: .checksumMismatch, detail: "") }
        try graph.restore(count: count, upperPoolCount: upperPoolCount, entry: Int32(bitPattern: UInt32(truncatingIfNeeded: field(9))),
                          topLevel: Int(Int64(bitPattern: field(10))) - 1)
        return graph
    }

    private mutating func take(_ length: Int) throws -> UnsafeRawBufferPointer {
        guard length >= 0, offset + length <= size else {
            throw VectorIndex.SnapshotError(code: .truncated, detail: "needs \(offset + length) bytes, file has \(size)")
        }
        let slice = UnsafeRawBufferPointer(start: base + offset, count: length)
        offset += length
        return slice
    }

    private mutating func read<T>(into pointer: UnsafeMutablePointer<T>, _ count: Int) throws {
        let slice = try take(count * MemoryLayout<T>.stride)
        checksum.add(slice)
        UnsafeMutableRawPointer(pointer).copyMemory(from: slice.baseAddress!, byteCount: slice.count)
    }
}
