import CSearchKernels
@testable import SearchEngine
import Testing

/// The kernels chosen at run time agree with the portable ones on every length, whichever of
/// them this CPU can run.
struct KernelsTests {
    static let lengths = [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 384, 385]

    @Test func everyFloatKernelThisCPURunsMatchesThePortableOne() {
        var generator = SystemRandomNumberGenerator()
        for count in Self.lengths {
            let a = (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
            let b = (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    let pa = a.baseAddress ?? UnsafePointer(bitPattern: 16)!, pb = b.baseAddress ?? UnsafePointer(bitPattern: 16)!
                    let expected = Kernels.dotPortable(pa, pb, count)
                    if conduit_has_avx2_fma() != 0 { #expect(abs(conduit_dot_f32_avx2(pa, pb, count) - expected) < 1e-4, "avx2, \(count)") }
                    if conduit_has_avx512() != 0 { #expect(abs(conduit_dot_f32_avx512(pa, pb, count) - expected) < 1e-4, "avx512, \(count)") }
                    #expect(abs(Kernels.dot(pa, pb, count) - expected) < 1e-4, "chosen, \(count)")
                }
            }
        }
    }

    @Test func everyInt8KernelThisCPURunsMatchesThePortableOneExactly() {
        var generator = SystemRandomNumberGenerator()
        for count in Self.lengths {
            let query = (0..<count).map { _ in Int16.random(in: -8191...8191, using: &generator) }
            let codes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            query.withUnsafeBufferPointer { query in
                codes.withUnsafeBufferPointer { codes in
                    let q = query.baseAddress ?? UnsafePointer(bitPattern: 16)!, c = codes.baseAddress ?? UnsafePointer(bitPattern: 16)!
                    let expected = Kernels.dotPortable(q, codes: c, count)
                    if conduit_has_avx2_fma() != 0 { #expect(conduit_dot_i16_u8_avx2(q, c, count) == expected, "avx2, \(count)") }
                    if conduit_has_avx512() != 0 { #expect(conduit_dot_i16_u8_avx512(q, c, count) == expected, "avx512, \(count)") }
                    #expect(Kernels.dot(q, codes: c, count) == expected, "chosen, \(count)")
                }
            }
        }
    }
}
