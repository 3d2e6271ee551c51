import Foundation
@testable import TextEmbedding
import Testing

struct FastErfTests {
    @Test func matchesTheCLibraryAcrossTheRange() {
        var worst: Float = 0
        var x: Float = -6
        while x <= 6 {
            worst = max(worst, abs(fastErf(x) - erff(x)))
            x += 0.001
        }
        #expect(worst < 2e-6, "max error \(worst)")
        #expect(fastErf(0) == 0)
        #expect(fastErf(10) == 1 || abs(fastErf(10) - 1) < 1e-6)
        #expect(abs(fastErf(-10) + 1) < 1e-6)
    }
}
