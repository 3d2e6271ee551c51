@testable import Embedder
import Foundation
import Testing
import TestSupport
import TextEmbedding

/// Chunking and text extraction on the real tokenizer.
struct DocumentChunkerTests {
    static let tokenizer = try? WordPieceTokenizer(vocabularyFile: TestEnvironment.miniLMDirectory.appendingPathComponent("vocab.txt"))

    func chunker(max: Int = 40, overlap: Int = 8) throws -> DocumentChunker {
        var chunker = DocumentChunker(tokenizer: try #require(Self.tokenizer))
        chunker.maxTokens = max
        chunker.overlapTokens = overlap
        return chunker
    }

    static let article = (1...6).map { paragraph in
        (1...4).map { "Paragraph \(paragraph) sentence \($0) talks about retrieval and embeddings." }.joined(separator: " ")
    }.joined(separator: "\n\n")

    @Test func offsetsPointAtTheChunkTextInTheSource() throws {
        let chunks = try chunker().chunk(ExtractedText.extract(Self.article, format: .plain))
        let source = Array(Self.article.unicodeScalars)
        #expect(chunks.count > 3)
        for chunk in chunks {
            #expect(String(String.UnicodeScalarView(source[chunk.start..<chunk.end])) == chunk.text)
        }
    }

    @Test func chunksStayWithinTheTokenBudgetAndEndOnSentences() throws {
        let chunker = try chunker()
        for chunk in chunker.chunk(ExtractedText.extract(Self.article, format: .plain)) {
            #expect(chunker.tokenizer.wordPieces(chunk.text).count <= 40)
            #expect(chunk.text.hasSuffix("."))
        }
    }

    @Test func consecutiveChunksOverlap() throws {
        let chunks = try chunker(max: 40, overlap: 16).chunk(ExtractedText.extract(Self.article, format: .plain))
        let overlapping = zip(chunks, chunks.dropFirst()).filter { $0.1.start < $0.0.end }
        #expect(!overlapping.isEmpty)
    }

    @Test func theSameTextGivesTheSameChunks() throws {
        let chunker = try chunker()
        #expect(chunker.chunk(ExtractedText.extract(Self.article, format: .plain)) == chunker.chunk(ExtractedText.extract(Self.article, format: .plain)))
    }

    @Test func aSentenceLongerThanAChunkIsCutAtWords() throws {
        let text = Array(repeating: "endless", count: 300).joined(separator: " ")
        let chunker = try chunker()
        let chunks = chunker.chunk(ExtractedText.extract(text, format: .plain))
        #expect(chunks.count > 1)
        for chunk in chunks { #expect(chunker.tokenizer.wordPieces(chunk.text).count <= 40) }
    }

    @Test func markdownHeadingsBecomeContextAndMarkupGoes() throws {
        let markdown = "# Install\n\nRun **make up** to start.\n\n## Configure\n\nSet the [port](https://x.dev) with `CONDUIT_PORT`.\n"
        let extracted = ExtractedText.extract(markdown, format: .markdown)
        let chunks = try chunker(max: 12, overlap: 0).chunk(extracted)
        let configure = try #require(chunks.first { $0.text.contains("Set the port") })
        #expect(configure.heading == "Configure")
        #expect(configure.text.contains("CONDUIT_PORT"))
        #expect(!configure.text.contains("https://"))
        #expect(chunks.first { $0.text.contains("make up") }?.heading == "Install")
    }

    @Test func htmlIsStrippedToTextWithHeadingsAndEntities() throws {
        let html = "<html><head><style>p{color:red}</style><script>var x = 1;</script></head><body><h1>Budgets</h1><p>Spend &amp; limits &lt;100&gt;.</p></body></html>"
        let extracted = ExtractedText.extract(html, format: ExtractedText.format(of: html, contentType: nil, source: nil))
        let text = String(String.UnicodeScalarView(extracted.scalars))
        #expect(text.contains("Spend & limits <100>."))
        #expect(!text.contains("color"))
        #expect(!text.contains("var x"))
        #expect(extracted.headings.map(\.title) == ["Budgets"])
        let chunk = try #require(try chunker().chunk(extracted).first { $0.text.contains("Spend") })
        #expect(chunk.heading == "Budgets")
        // Offsets still point into the HTML source.
        let source = Array(html.unicodeScalars)
        #expect(String(String.UnicodeScalarView(source[chunk.start..<chunk.end])).hasSuffix("&lt;100&gt;."))
    }

    @Test func formatDetection() {
        #expect(ExtractedText.format(of: "x", contentType: "text/markdown", source: nil) == .markdown)
        #expect(ExtractedText.format(of: "x", contentType: nil, source: "s3://b/readme.md") == .markdown)
        #expect(ExtractedText.format(of: "<div>x</div>", contentType: nil, source: nil) == .html)
        #expect(ExtractedText.format(of: "just words", contentType: nil, source: nil) == .plain)
    }
}
