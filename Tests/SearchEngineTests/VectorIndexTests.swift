import Foundation
import SearchEngine
import Testing
import TestSupport

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

    /// Unit vectors around `clusters` random centres (noise σ = 1/√dimension), like the benchmark's.
    static func clustered(_ count: Int, dimension: Int, clusters: Int, seed: UInt64) -> [[Float]] {
        let centres = unitVectors(clusters, dimension: dimension, seed: 44)
        let noise = unitVectors(count, dimension: dimension, seed: seed)
        return noise.enumerated().map { number, direction in
            let centre = centres[(number &* 7919) % clusters]
            // A unit direction times ~1 matches σ = 1/√d per component in expectation.
            let mixed = zip(centre, direction).map { $0 + $1 }
            let norm = mixed.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return mixed.map { $0 / norm }
        }
    }

    static func exact(_ query: [Float], _ vectors: [(UInt32, [Float])], k: Int) -> [UInt32] {
        vectors.map { ($0.0, zip(query, $0.1).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            .sorted { $0.1 > $1.1 }.prefix(k).map(\.0)
    }

    static func recall(_ index: VectorIndex, _ vectors: [(UInt32, [Float])], queries: [[Float]], k: Int) -> Double {
        var found = 0
        for query in queries {
            let truth = Set(exact(query, vectors, k: k))
            found += index.search(query, k: k).filter { truth.contains($0.label) }.count
        }
        return Double(found) / Double(queries.count * k)
    }

    // Sized for a debug build on two cores: these tests share the cooperative pool with the rest.
    let data = Self.clustered(1000, dimension: 32, clusters: 20, seed: 42).enumerated().map { (UInt32($0.offset), $0.element) }
    let queries = Self.clustered(50, dimension: 32, clusters: 20, seed: 7)

    func built(quantization: VectorIndex.Quantization = .none) -> VectorIndex {
        // A smaller construction beam keeps debug-build tests quick; recall must still hold at
        // the default efSearch.
        let index = VectorIndex(dimension: 32, parameters: .init(efConstruction: 64, quantization: quantization))
        for (label, vector) in data { index.upsert(label: label, vector: vector) }
        return index
    }

    @Test func recallAtTenIsHigh() {
        let index = built()
        #expect(index.count == 1000)
        let recall = Self.recall(index, data, queries: queries, k: 10)
        #expect(recall >= 0.95, "recall@10 \(recall)")
        // A vector finds itself first, with score 1.
        let hit = index.search(data[123].1, k: 1).first
        #expect(hit?.label == 123)
        #expect(abs((hit?.score ?? 0) - 1) < 1e-5)
    }

    @Test func deletedVectorsNeverComeBackAndRecallHoldsAfterChurn() async throws {
        let index = built()
        index.remove(label: 123)
        #expect(index.search(data[123].1, k: 5).allSatisfy { $0.label != 123 })
        // Delete 60% (a background rebuild starts past 25%) and re-check recall on the rest.
        for (label, _) in data.prefix(600) { index.remove(label: label) }
        let live = Array(data.dropFirst(600))
        #expect(index.count == 400)
        #expect(Self.recall(index, live, queries: queries, k: 10) >= 0.95)
        for hit in index.search(queries[0], k: 50) { #expect(hit.label >= 600) }
        #expect(try await eventually { !index.isCompacting })
        #expect(index.count == 400)
        let recall = Self.recall(index, live, queries: queries, k: 10)
        #expect(recall >= 0.95, "recall@10 after the rebuild \(recall)")
    }

    @Test func recallHoldsAfterDeletingAndReinsertingThirtyPercent() async throws {
        let index = built()
        let churned = data.filter { $0.0 % 10 < 3 }
        for (label, _) in churned { index.remove(label: label) }
        for (label, vector) in churned { index.upsert(label: label, vector: vector) }
        #expect(index.count == 1000)
        let recall = Self.recall(index, data, queries: queries, k: 10)
        #expect(recall >= 0.95, "recall@10 after 30% churn \(recall)")
        #expect(try await eventually { !index.isCompacting })
        #expect(Self.recall(index, data, queries: queries, k: 10) >= 0.95)
    }

    @Test func int8QuantizationKeepsRecallAndExactScores() {
        let index = built(quantization: .int8)
        let recall = Self.recall(index, data, queries: queries, k: 10)
        #expect(recall >= 0.95, "int8 recall@10 \(recall)")
        // Scores are rescored with the float vectors: exact, not quantized.
        let hit = index.search(data[7].1, k: 1).first
        #expect(hit?.label == 7)
        #expect(abs((hit?.score ?? 0) - 1) < 1e-5)
        let float = built()
        #expect(index.memoryBytes > float.memoryBytes)
    }

    @Test func snapshotRoundTripGivesTheSameAnswers() throws {
        for quantization in VectorIndex.Quantization.allCases {
            let index = built(quantization: quantization)
            index.remove(label: 5)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(UUID().uuidString).snap")
            defer { try? FileManager.default.removeItem(at: url) }
            try index.write(to: url)
            let loaded = try VectorIndex.load(from: url)
            #expect(loaded.count == 999)
            #expect(loaded.parameters == index.parameters)
            #expect(!loaded.contains(label: 5))
            for query in queries.prefix(10) {
                #expect(loaded.search(query, k: 10) == index.search(query, k: 10))
            }
            // It keeps accepting updates.
            loaded.upsert(label: 5000, vector: queries[0])
            #expect(loaded.search(queries[0], k: 1).first?.label == 5000)
        }
    }

    @Test func corruptSnapshotsAreRefused() throws {
        let index = built()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(UUID().uuidString).snap")
        defer { try? FileManager.default.removeItem(at: url) }
        try index.write(to: url)
        let good = try Data(contentsOf: url)
        func code(_ bytes: Data) -> VectorIndex.SnapshotError.Code? {
            try? bytes.write(to: url)
            do {
                _ = try VectorIndex.load(from: url)
                return nil
            } catch let error as VectorIndex.SnapshotError {
                return error.code
            } catch {
                return .io
            }
        }
        var flipped = good
        flipped[good.count / 2] ^= 0x40
        #expect(code(flipped) == .checksumMismatch)
        #expect(code(good.prefix(good.count - 100)) == .truncated)
        var foreign = good
        foreign[0] = 0x58
        #expect(code(foreign) == .notASnapshot)
        var future = good
        future[8] = 9
        #expect(code(future) == .unsupportedVersion)
        #expect(code(good) == nil)
    }

    @Test func upsertReplacesTheVector() {
        let index = built()
        index.upsert(label: 5, vector: data[900].1)
        #expect(index.count == 1000)
        let hits = index.search(data[900].1, k: 2).map(\.label)
        #expect(Set(hits) == [5, 900])
    }

    @Test func selectiveFiltersStillReturnKResults() {
        let index = built()
        // 1% of the vectors pass: the walk alone would rarely meet ten of them.
        let allowed: @Sendable (UInt32) -> Bool = { $0 % 100 == 0 }
        for query in queries.prefix(10) {
            let hits = index.search(query, k: 10, filter: allowed)
            #expect(hits.map(\.label) == Self.exact(query, data.filter { allowed($0.0) }, k: 10))
        }
        // A 20% filter is walked, not scanned, and still fills k with accepted labels.
        let common: @Sendable (UInt32) -> Bool = { $0 % 5 == 0 }
        for query in queries.prefix(10) {
            let hits = index.search(query, k: 10, filter: common)
            #expect(hits.count == 10)
            #expect(hits.allSatisfy { common($0.label) })
            let truth = Set(Self.exact(query, data.filter { common($0.0) }, k: 10))
            #expect(hits.filter { truth.contains($0.label) }.count >= 9)
        }
    }

    @Test func searchesRunWhileInserting() async {
        let index = VectorIndex(dimension: 32, parameters: .init(m: 12, efConstruction: 64, efSearch: 64))
        for (label, vector) in data.prefix(200) { index.upsert(label: label, vector: vector) }
        let queries = self.queries
        let data = self.data
        await withTaskGroup(of: Int.self) { group in
            group.addTask {
                for (label, vector) in data.dropFirst(200) { index.upsert(label: label, vector: vector) }
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
        index.upsert(label: 1, vector: [2, 0, 0, 0])
        #expect(index.search([1, 0, 0, 0], k: 0).isEmpty)
        // Vectors and queries are normalised: cosine similarity 1.
        #expect(index.search([3, 0, 0, 0], k: 3) == [.init(label: 1, score: 1)])
    }
}
