import Foundation

/// A memory-mapped `.safetensors` file: an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the raw data. F32 tensors only.
///
/// `@unchecked Sendable`: the mapping is read-only (PROT_READ) for the object's whole life and
/// unmapped only in `deinit`, so concurrent readers can never see it change.
public final class SafeTensors: @unchecked Sendable {
    public struct Tensor {
        public let shape: [Int]
        public let values: UnsafeBufferPointer<Float>
    }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    private let base: UnsafeMutableRawPointer
    private let length: Int
    private var tensors: [String: (shape: [Int], offset: Int, count: Int)] = [:]

    public init(contentsOf url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw LoadError(description: "cannot open \(url.lastPathComponent)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size > 8 else { throw LoadError(description: "\(url.lastPathComponent) is too short") }
        length = Int(info.st_size)
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw LoadError(description: "cannot map \(url.lastPathComponent)")
        }
        base = mapped
        let headerLength = Int(UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)))
        guard headerLength > 0, 8 + headerLength <= length else {
            munmap(base, length)
            throw LoadError(description: "bad header length")
        }
        let header = Data(bytes: base + 8, count: headerLength)
        guard let entries = try JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            munmap(base, length)
            throw LoadError(description: "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        guard dataStart % 4 == 0 else {
            munmap(base, length)
            throw LoadError(description: "tensor data is not 4-byte aligned")
        }
        for (name, entry) in entries where name != "__metadata__" {
            guard let entry = entry as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { continue }
            guard dtype == "F32" else { continue }
            let count = shape.reduce(1, *)
            guard offsets[1] - offsets[0] == count * 4, dataStart + offsets[1] <= length, offsets[0] % 4 == 0 else {
                munmap(base, length)
                throw LoadError(description: "tensor \(name) has an inconsistent size")
            }
            tensors[name] = (shape, dataStart + offsets[0], count)
        }
    }

    deinit {
        munmap(base, length)
    }

    public var names: [String] { Array(tensors.keys) }

    /// The tensor `name`, checked against the expected shape.
    public func tensor(_ name: String, shape expected: [Int]) throws -> Tensor {
        guard let entry = tensors[name] else { throw LoadError(description: "missing tensor \(name)") }
        guard entry.shape == expected else { throw LoadError(description: "tensor \(name) has shape \(entry.shape), expected \(expected)") }
        // The data section starts at 8 + header length, which the format pads so F32 data is aligned.
        let pointer = (base + entry.offset).assumingMemoryBound(to: Float.self)
        return Tensor(shape: entry.shape, values: UnsafeBufferPointer(start: pointer, count: entry.count))
    }
}
