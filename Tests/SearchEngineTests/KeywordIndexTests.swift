import Foundation
import SearchEngine
import Testing

struct TextAnalyzerTests {
    let analyzer = TextAnalyzer()

    @Test func foldsCaseAccentsAndWidth() {
        #expect(analyzer.terms("Café CRÈME ｆｕｌｌ") == analyzer.terms("cafe creme full"))
        #expect(analyzer.terms("Straße") == analyzer.terms("STRASSE"))
    }

    @Test func stemsCommonEnglishEndings() {
        #expect(Set(["running", "runs", "run"].flatMap(analyzer.terms)).count == 1)
        #expect(analyzer.terms("policies") == analyzer.terms("policy"))
        #expect(analyzer.terms("indexed") == analyzer.terms("index"))
        // Words that only look plural keep their ending.
        #expect(analyzer.terms("status") == ["status"])
        #expect(analyzer.terms("class") == ["class"])
    }

    @Test func splitsOnPunctuationAndIdeographs() {
        #expect(analyzer.terms("hello,world! don't") == ["hello", "world", "dont"])
        #expect(analyzer.terms("日本語") == ["日", "本", "語"])
        #expect(analyzer.terms("") == [])
    }
}

struct KeywordIndexTests {
    // Labels: a = 1, b = 2, c = 3, d = 4.
    static let corpus: [UInt32: String] = [
        1: "the cat sat on the mat",
        2: "the dog chased the cat around the garden",
        3: "quantum computing with superconducting qubits",
        4: "cats and dogs are common pets",
    ]

    func index() -> KeywordIndex {
        var index = KeywordIndex()
        for (label, text) in Self.corpus.sorted(by: { $0.key < $1.key }) { index.upsert(label: label, text: text) }
        return index
    }

    @Test func scoresFollowTheBM25Formula() {
        let index = index()
        let hits = index.search("cat", limit: 10)
        // "cat" (stemmed "cats" too) appears in a, b and d; N = 4, n = 3.
        #expect(Set(hits.map(\.label)) == [1, 2, 4])
        let idf = log(1 + (4 - 3 + 0.5) / (3 + 0.5))
        #expect(abs(index.idf("cat") - idf) < 1e-12)
        let lengths = ["a": 6.0, "b": 8.0, "c": 5.0, "d": 6.0]
        let average = lengths.values.reduce(0, +) / 4
        let expectedA = idf * 1 * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * lengths["a"]! / average))
        #expect(abs(hits.first { $0.label == 1 }!.score - expectedA) < 1e-9)
        // Equal length and frequency tie (broken by label); the longer document ranks last.
        #expect(hits.map(\.label) == [1, 4, 2])
        #expect(hits[0].score == hits[1].score)
        #expect(hits[1].score > hits[2].score)
    }

    @Test func rareTermsOutweighCommonOnes() {
        let hits = index().search("the qubits", limit: 2)
        #expect(hits.first?.label == 3)
    }

    @Test func replacingAndRemovingUpdateStatistics() {
        var index = index()
        index.upsert(label: 3, text: "a cat in a box")
        #expect(index.count == 4)
        #expect(index.search("qubits", limit: 5).isEmpty)
        #expect(index.search("cat", limit: 5).map(\.label).contains(3))
        // Four documents now contain "cat": its document frequency followed the replacement.
        #expect(abs(index.idf("cat") - log(1 + 0.5 / 4.5)) < 1e-12)
        index.remove(label: 1)
        index.remove(label: 99)
        #expect(index.count == 3)
        #expect(!index.search("mat", limit: 5).map(\.label).contains(1))
        #expect(!index.contains(1))
        // Many replacements of one document leave one live copy (stale postings are swept).
        for round in 0..<50 { index.upsert(label: 2, text: "dog number \(round)") }
        #expect(index.search("dog", limit: 10).map(\.label) == [2, 4])
    }

    @Test func filterAndLimitApply() {
        let index = index()
        #expect(index.search("cat", limit: 1).count == 1)
        #expect(index.search("cat", limit: 10) { $0 != 4 }.map(\.label).sorted() == [1, 2])
        #expect(index.search("nothing matches", limit: 10).isEmpty)
        #expect(index.search("cat", limit: 0).isEmpty)
    }
}

struct RankFusionTests {
    @Test func reciprocalRankFusionRewardsAgreementAndKeepsSignals() {
        let results = RankFusion.reciprocalRank(
            ["vector": [("x", 0.9), ("y", 0.8), ("z", 0.1)], "keyword": [("y", 7.0), ("w", 3.0)]],
            k: 60, limit: 10
        )
        #expect(results.first?.id == "y")
        #expect(abs(results.first!.score - (1.0 / 62 + 1.0 / 61)) < 1e-12)
        #expect(results.first?.signals["vector"] == .init(rank: 2, score: 0.8))
        #expect(results.first?.signals["keyword"] == .init(rank: 1, score: 7.0))
        #expect(results.first { $0.id == "w" }?.signals["vector"] == nil)
    }

    @Test func weightsShiftTheOrder() {
        let lists: [String: [(id: String, score: Double)]] = ["vector": [("x", 0.9)], "keyword": [("y", 5.0)]]
        #expect(RankFusion.reciprocalRank(lists, weights: ["keyword": 2], limit: 2).first?.id == "y")
        #expect(RankFusion.reciprocalRank(lists, weights: ["vector": 2], limit: 2).first?.id == "x")
    }

    @Test func normalizedScoresUseMinMaxPerSignal() {
        let results = RankFusion.normalizedScores(
            ["vector": [("x", 0.9), ("y", 0.5)], "keyword": [("y", 10), ("x", 0)]],
            weights: ["vector": 1, "keyword": 0.5], limit: 2
        )
        #expect(results.map(\.id) == ["x", "y"])
        #expect(abs(results[0].score - 1.0) < 1e-12)
        #expect(abs(results[1].score - 0.5) < 1e-12)
    }
}
