import CSearchKernels

/// Distance kernels of the vector index, chosen once at start by what the CPU has: the C
/// kernels of `CSearchKernels` for AVX-512 or AVX2 with FMA (compiled for those targets
/// function by function), else the portable Swift ones. The package itself is built for the
/// baseline of its architecture, so one binary runs on any x86-64 and the tree builds on arm64.
enum Kernels {
    enum Level: Sendable { case avx512, avx2, portable }

    static let level: Level = conduit_has_avx512() != 0 ? .avx512 : conduit_has_avx2_fma() != 0 ? .avx2 : .portable

    /// Inner product of two float vectors.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        switch level {
        case .avx512: conduit_dot_f32_avx512(a, b, count)
        case .avx2: conduit_dot_f32_avx2(a, b, count)
        case .portable: dotPortable(a, b, count)
        }
    }

    /// 32 lanes per step in two accumulators.
    @inline(__always)
    static func dotPortable(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var first = SIMD16<Float>()
        var second = SIMD16<Float>()
        var index = 0
        while index + 32 <= count {
            first = first.addingProduct(load(a + index), load(b + index))
            second = second.addingProduct(load(a + index + 16), load(b + index + 16))
            index += 32
        }
        if index + 16 <= count {
            first = first.addingProduct(load(a + index), load(b + index))
            index += 16
        }
        var total = (first + second).sum()
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }

    /// Inner product of a 16-bit query with a vector of 8-bit codes, in 32-bit integers. Written
    /// as a plain loop on purpose: LLVM turns it into widening multiply-adds (`vpmaddwd`), 16
    /// components per instruction, which no float formulation matches.
    @inline(__always)
    static func dot(_ query: UnsafePointer<Int16>, codes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
        switch level {
        case .avx512: conduit_dot_i16_u8_avx512(query, codes, count)
        case .avx2: conduit_dot_i16_u8_avx2(query, codes, count)
        case .portable: dotPortable(query, codes: codes, count)
        }
    }

    @inline(__always)
    static func dotPortable(_ query: UnsafePointer<Int16>, codes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
        var total: Int32 = 0
        for index in 0..<count { total &+= Int32(query[index]) &* Int32(codes[index]) }
        return total
    }

    @inline(__always)
    private static func load(_ pointer: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Scales `vector` to unit length in place (a zero vector stays zero).
    static func normalize(_ vector: inout [Float]) {
        let norm = vector.withUnsafeBufferPointer { dot($0.baseAddress!, $0.baseAddress!, $0.count) }.squareRoot()
        guard norm > 0, abs(norm - 1) > 1e-6 else { return }
        for index in vector.indices { vector[index] /= norm }
    }
}

/// Per-dimension 8-bit scalar quantization: each component becomes `minimum + scale × code`
/// with `code` in 0…255, ranges learned from a sample. The query side folds the scales into the
/// query once, so scoring a code vector is one multiply-add per component.
struct ScalarQuantizer {
    var minimum: [Float]
    var scale: [Float]

    /// Ranges from the sample's per-dimension extremes, widened slightly so values a little
    /// outside the sample still fit before clamping.
    init(sample: UnsafePointer<Float>, count: Int, dimension: Int) {
        var low = [Float](repeating: .infinity, count: dimension)
        var high = [Float](repeating: -.infinity, count: dimension)
        for row in 0..<count {
            let vector = sample + row * dimension
            for column in 0..<dimension {
                low[column] = min(low[column], vector[column])
                high[column] = max(high[column], vector[column])
            }
        }
        minimum = []
        scale = []
        for column in 0..<dimension {
            let margin = (high[column] - low[column]) * 0.02
            let lower = max(-1, low[column] - margin)
            let upper = min(1, high[column] + margin)
            minimum.append(lower)
            scale.append(max(upper - lower, 1e-6) / 255)
        }
    }

    init(minimum: [Float], scale: [Float]) {
        self.minimum = minimum
        self.scale = scale
    }

    func encode(_ vector: UnsafePointer<Float>, into codes: UnsafeMutablePointer<UInt8>) {
        for column in minimum.indices {
            let code = ((vector[column] - minimum[column]) / scale[column]).rounded()
            codes[column] = UInt8(min(255, max(0, code)))
        }
    }

    /// The query with the scales folded in, as 16-bit integers: score ≈ offset + multiplier ×
    /// Σ query × code. Components stay within ±8191 so 384… 1024 products of 255 cannot
    /// overflow 32 bits.
    func prepare(_ query: [Float]) -> (scaled: [Int16], multiplier: Float, offset: Float) {
        var offset: Float = 0
        var largest: Float = 0
        var scaled = [Float](repeating: 0, count: query.count)
        for column in query.indices {
            offset += query[column] * minimum[column]
            scaled[column] = query[column] * scale[column]
            largest = max(largest, abs(scaled[column]))
        }
        let limit = Float(min(8191, Int(Int32.max / 255) / max(query.count, 1)))
        let factor = largest > 0 ? limit / largest : 1
        return (scaled.map { Int16(($0 * factor).rounded()) }, 1 / factor, offset)
    }
}
