@testable import SearchEngine
import Testing

/// The exact-scan set the semantic cache searches while its graphs are built.
struct FlatVectorsTests {
    static func random(_ dimension: Int, _ state: inout UInt64) -> [Float] {
        (0..<dimension).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
    }

    @Test func searchIsExactAcrossBlocksAndDroppingABlockForgetsItsVectors() {
        var state: UInt64 = 7
        let dimension = 24
        var flat = FlatVectors(dimension: dimension)
        let vectors = (0..<(FlatVectors.blockSize * 2 + 100)).map { _ in Self.random(dimension, &state) }
        for (label, vector) in vectors.enumerated() { flat.append(label: UInt32(label), vector: vector) }
        #expect(flat.count == vectors.count)
        #expect(flat.blocks.count == 3)

        func cosine(_ a: [Float], _ b: [Float]) -> Float {
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
            return dot / ((a.reduce(0) { $0 + $1 * $1 }).squareRoot() * (b.reduce(0) { $0 + $1 * $1 }).squareRoot())
        }
        for _ in 0..<5 {
            let query = Self.random(dimension, &state)
            let expected = vectors.enumerated().map { ($0.offset, cosine(query, $0.element)) }.sorted { $0.1 > $1.1 }.prefix(10)
            let found = flat.search(query, k: 10)
            #expect(found.map(\.label) == expected.map { UInt32($0.0) })
            for (hit, truth) in zip(found, expected) { #expect(abs(hit.score - truth.1) < 1e-4) }
        }

        // A copy keeps what it saw; the original drops its oldest block.
        let snapshot = flat
        flat.removeFirstBlock()
        #expect(flat.count == vectors.count - FlatVectors.blockSize)
        #expect(snapshot.count == vectors.count)
        let first = flat.search(vectors[0], k: 1).first
        #expect(first?.label != 0)
        #expect(snapshot.search(vectors[0], k: 1).first?.label == 0)
        #expect(FlatVectors(dimension: 4).search([1, 0, 0, 0], k: 3).isEmpty)
    }
}
