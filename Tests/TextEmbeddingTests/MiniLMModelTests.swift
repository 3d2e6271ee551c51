import Foundation
import Testing
import TestSupport
import TextEmbedding

/// The native model against sentence-transformers' reference values for all-MiniLM-L6-v2.
struct MiniLMModelTests {
    static let embedder: TextEmbedder? = try? TextEmbedder(modelDirectory: TestEnvironment.miniLMDirectory)

    func embedder() throws -> TextEmbedder { try #require(Self.embedder, "model not installed; run make test") }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    }

    @Test func referenceEmbeddingOfTheFoxSentence() throws {
        let vector = try embedder().embed(["The quick brown fox jumps over the lazy dog."])[0]
        #expect(vector.count == 384)
        let reference: [Float] = [0.043934, 0.058934, 0.048178, 0.077548, 0.026744]
        for (ours, theirs) in zip(vector.prefix(5), reference) {
            #expect(abs(ours - theirs) < 2e-5, "\(Array(vector.prefix(5)))")
        }
        #expect(abs(Self.cosine(vector, vector) - 1) < 1e-5)
    }

    @Test func referenceSimilarities() throws {
        let vectors = try embedder().embed([
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "The weather in Paris is sunny today.",
        ])
        #expect(abs(Self.cosine(vectors[0], vectors[1]) - 0.893860) < 1e-4)
        #expect(abs(Self.cosine(vectors[0], vectors[2]) - -0.014644) < 1e-4)
    }

    @Test func packedBatchGivesTheSameVectorsAsOneByOne() throws {
        let embedder = try embedder()
        let texts = ["short", "A much longer sentence, with punctuation and several words in it.", "", "日本語のテキスト"]
        let batched = embedder.embed(texts)
        for (text, vector) in zip(texts, batched) {
            let alone = embedder.embed([text])[0]
            #expect(Self.cosine(alone, vector) > 0.99999, "\(text)")
        }
    }
}
