@testable import SearchEngine
import Testing

/// The 512-bit kernels agree with the portable ones (where this CPU has AVX-512).
@Suite struct KernelsTests {
    @Test(arguments: [7, 16, 100, 384, 1024])
    func wideKernelsMatchThePortableOnes(dimension: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let a = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
        let b = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
        let query = (0..<dimension).map { _ in Int16.random(in: -8191...8191, using: &generator) }
        let codes = (0..<dimension).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let portable = Kernels.dotPortable(a, b, dimension)
        let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(Double(portable) - exact) < 1e-3)
        let integer = zip(query, codes).reduce(Int32(0)) { $0 + Int32($1.0) * Int32($1.1) }
        #expect(Kernels.dotPortable(query, codes: codes, dimension) == integer)
        #expect(abs(Double(Kernels.dot(a, b, dimension)) - exact) < 1e-3)
        #expect(Kernels.dot(query, codes: codes, dimension) == integer)
    }
}
