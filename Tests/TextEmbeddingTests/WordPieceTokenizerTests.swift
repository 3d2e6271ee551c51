import Foundation
import Testing
import TestSupport
import TextEmbedding

/// The tokenizer against all-MiniLM-L6-v2's real vocabulary.
struct WordPieceTokenizerTests {
    static let tokenizer: WordPieceTokenizer? = try? WordPieceTokenizer(
        vocabularyFile: TestEnvironment.miniLMDirectory.appendingPathComponent("vocab.txt")
    )

    func tokenizer() throws -> WordPieceTokenizer { try #require(Self.tokenizer, "vocab.txt not installed; run make test") }

    @Test func referenceSentence() throws {
        #expect(try tokenizer().encode("The quick brown fox jumps over the lazy dog.")
            == [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
    }

    @Test func emptyAndWhitespaceOnlyTextIsJustTheSpecialTokens() throws {
        #expect(try tokenizer().encode("") == [101, 102])
        #expect(try tokenizer().encode(" \t\n\u{3000} ") == [101, 102])
    }

    @Test func lowerCasesAndStripsAccents() throws {
        let tokenizer = try tokenizer()
        #expect(tokenizer.wordPieces("Héllo WÖRLD café") == tokenizer.wordPieces("hello world cafe"))
        #expect(tokenizer.wordPieces("naïve résumé") == tokenizer.wordPieces("naive resume"))
    }

    @Test func splitsPunctuationAndCJKIdeographs() throws {
        let tokenizer = try tokenizer()
        #expect(tokenizer.wordPieces("hello,world!") == tokenizer.wordPieces("hello , world !"))
        #expect(tokenizer.wordPieces("日本語") == tokenizer.wordPieces("日 本 語"))
        #expect(tokenizer.wordPieces("日本語").count == 3)
        #expect(!tokenizer.wordPieces("日本語").contains(WordPieceTokenizer.unknownID))
    }

    @Test func continuationsUseDoubleHash() throws {
        let tokenizer = try tokenizer()
        let pieces = tokenizer.wordPieces("unaffable")
        #expect(pieces.count > 1)
        #expect(!pieces.contains(WordPieceTokenizer.unknownID))
    }

    @Test func unknownCharactersAndOverlongWordsBecomeUNK() throws {
        let tokenizer = try tokenizer()
        #expect(tokenizer.wordPieces("🦜") == [WordPieceTokenizer.unknownID])
        #expect(tokenizer.wordPieces(String(repeating: "a", count: 101)) == [WordPieceTokenizer.unknownID])
        #expect(tokenizer.wordPieces(String(repeating: "a", count: 100)) != [WordPieceTokenizer.unknownID])
    }

    @Test func controlCharactersAreDropped() throws {
        let tokenizer = try tokenizer()
        #expect(tokenizer.wordPieces("he\u{0}llo\u{200B}") == tokenizer.wordPieces("hello"))
    }

    @Test func truncatesToTheMaximumLengthKeepingSeparator() throws {
        let text = Array(repeating: "word", count: 1000).joined(separator: " ")
        let ids = try tokenizer().encode(text, maxLength: 256)
        #expect(ids.count == 256)
        #expect(ids.first == WordPieceTokenizer.classID)
        #expect(ids.last == WordPieceTokenizer.separatorID)
    }
}
