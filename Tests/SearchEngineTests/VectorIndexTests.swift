import Foundation
import SearchEngine
import Testing

/// HNSW against brute force on random unit vectors.
struct VectorIndexTests {
    static func unitVectors(_ count: Int, dimension: Int, seed: UInt64) -> [[Float]] {
        var state = seed
        func next() -> Float {
            // xorshift64*: deterministic across runs.
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return Float(Double((state &* 2_685_821_657_736_338_717) >> 11) / Double(1 << 53)) * 2 - 1
        }
        return (0..<count).map { _ in
            let vector = (0..<dimension).map { _ in next() }
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return vector.map { $0 / norm }
        }
    }

    static func exact(_ query: [Float], _ vectors: [(String, [Float])], k: Int) -> [String] {
        vectors.map { ($0.0, zip(query, $0.1).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            .sorted { $0.1 > $1.1 }.prefix(k).map(\.0)
    }

    static func recall(_ index: VectorIndex, _ vectors: [(String, [Float])], queries: [[Float]], k: Int, allowed: ((String) -> Bool)? = nil) -> Double {
        var found = 0
        for query in queries {
            let truth = Set(exact(query, vectors.filter { allowed?($0.0) ?? true }, k: k))
            found += index.search(query, k: k, allowed: allowed).filter { truth.contains($0.id) }.count
        }
        return Double(found) / Double(queries.count * k)
    }

    // Sized for a debug build on two cores: these tests share the cooperative pool with the rest.
    let data = Self.unitVectors(1000, dimension: 32, seed: 42).enumerated().map { ("v\($0.offset)", $0.element) }
    let queries = Self.unitVectors(50, dimension: 32, seed: 7)

    func built() -> VectorIndex {
        // A smaller construction beam keeps debug-build tests quick; recall must still hold.
        let index = VectorIndex(dimension: 32, parameters: .init(m: 12, efConstruction: 64, efSearch: 64))
        for (id, vector) in data { index.upsert(id: id, vector: vector) }
        return index
    }

    @Test func recallAtTenIsHigh() {
        let index = built()
        #expect(index.count == 1000)
        let recall = Self.recall(index, data, queries: queries, k: 10)
        #expect(recall >= 0.95, "recall@10 \(recall)")
        // A vector finds itself first, with score 1.
        let hit = index.search(data[123].1, k: 1).first
        #expect(hit?.id == "v123")
        #expect(abs((hit?.score ?? 0) - 1) < 1e-5)
    }

    @Test func deletedVectorsNeverComeBackAndRecallHoldsAfterChurn() {
        let index = built()
        index.remove(id: "v123")
        #expect(index.search(data[123].1, k: 5).allSatisfy { $0.id != "v123" })
        // Delete 60% (compaction kicks in along the way) and re-check recall on the rest.
        for (id, _) in data.prefix(600) { index.remove(id: id) }
        let live = Array(data.dropFirst(600))
        #expect(index.count == 400)
        let recall = Self.recall(index, live, queries: queries, k: 10)
        #expect(recall >= 0.95, "recall@10 after churn \(recall)")
        for hit in index.search(queries[0], k: 50) { #expect(!data.prefix(600).contains { $0.0 == hit.id }) }
    }

    @Test func upsertReplacesTheVector() {
        let index = built()
        index.upsert(id: "v5", vector: data[900].1)
        #expect(index.count == 1000)
        let hits = index.search(data[900].1, k: 2).map(\.id)
        #expect(Set(hits) == ["v5", "v900"])
    }

    @Test func selectiveFiltersStillReturnKResults() {
        let index = built()
        // 1% of the vectors pass: the walk alone would rarely meet ten of them.
        let allowed: @Sendable (String) -> Bool = { Int($0.dropFirst())! % 100 == 0 }
        for query in queries.prefix(10) {
            let hits = index.search(query, k: 10, allowed: allowed, allowedFraction: 0.01)
            #expect(hits.count == 10)
            #expect(hits.allSatisfy { allowed($0.id) })
            #expect(hits.map(\.id) == Self.exact(query, data.filter { allowed($0.0) }, k: 10))
        }
        // Without the fraction hint the walk widens until it has k allowed results.
        let hits = index.search(queries[0], k: 10, allowed: allowed)
        #expect(hits.count == 10)
        #expect(hits.allSatisfy { allowed($0.id) })
    }

    @Test func searchesRunWhileInserting() async {
        let index = VectorIndex(dimension: 32, parameters: .init(m: 12, efConstruction: 64, efSearch: 64))
        for (id, vector) in data.prefix(200) { index.upsert(id: id, vector: vector) }
        let queries = self.queries
        let data = self.data
        await withTaskGroup(of: Int.self) { group in
            group.addTask {
                for (id, vector) in data.dropFirst(200) { index.upsert(id: id, vector: vector) }
                return 0
            }
            for worker in 0..<3 {
                group.addTask {
                    var answered = 0
                    for round in 0..<100 {
                        let hits = index.search(queries[(worker + round) % queries.count], k: 5)
                        if hits.count == 5, zip(hits, hits.dropFirst()).allSatisfy({ $0.score >= $1.score }) { answered += 1 }
                    }
                    return answered
                }
            }
            var total = 0
            for await answered in group { total += answered }
            #expect(total == 300)
        }
        #expect(index.count == 1000)
    }

    @Test func emptyIndexAndZeroKAnswerNothing() {
        let index = VectorIndex(dimension: 4)
        #expect(index.search([1, 0, 0, 0], k: 3).isEmpty)
        index.upsert(id: "a", vector: [1, 0, 0, 0])
        #expect(index.search([1, 0, 0, 0], k: 0).isEmpty)
        #expect(index.search([1, 0, 0, 0], k: 3).map(\.id) == ["a"])
    }
}
