import Foundation
import Testing
import TestSupport
import TextEmbedding

/// 55 varied inputs (accents, CJK, emoji, URLs, code, empty, a 1,000-word text that truncates)
/// with token ids and vectors from sentence-transformers, made by
/// deploy/dev/make-embedding-fixture.py. No Python runs here.
struct ReferenceFixtureTests {
    struct Fixture: Decodable {
        struct Record: Decodable {
            let text: String
            let ids: [Int]
            let embedding: [Float]
        }
        let records: [Record]
    }

    static func fixture() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "minilm_reference", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static let embedder: TextEmbedder? = try? TextEmbedder(modelDirectory: TestEnvironment.miniLMDirectory)

    @Test func tokenIDsMatchTheReferenceTokenizer() throws {
        let fixture = try Self.fixture()
        #expect(fixture.records.count >= 50)
        let embedder = try #require(Self.embedder)
        for record in fixture.records {
            #expect(embedder.tokenizer.encode(record.text) == record.ids, "\(record.text.prefix(60))")
        }
    }

    @Test func everyVectorIsWithinCosine0_9999OfTheReference() throws {
        let fixture = try Self.fixture()
        let embedder = try #require(Self.embedder)
        let vectors = embedder.embed(fixture.records.map(\.text))
        var worst: Float = 1
        for (record, vector) in zip(fixture.records, vectors) {
            let cosine = zip(record.embedding, vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            worst = min(worst, cosine)
            #expect(cosine >= 0.9999, "\(record.text.prefix(60)): cosine \(cosine)")
        }
        #expect(worst >= 0.9999)
    }
}
