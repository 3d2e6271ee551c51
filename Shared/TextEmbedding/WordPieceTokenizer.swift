import Foundation

/// BERT's uncased tokenizer exactly as the reference (Hugging Face `BertTokenizer` with
/// `do_lower_case`): clean the text, split CJK ideographs and punctuation, lower-case and
/// strip accents, then greedy longest-match WordPiece with `##` continuations.
public struct WordPieceTokenizer: Sendable {
    public static let padID = 0
    public static let unknownID = 100
    public static let classID = 101
    public static let separatorID = 102

    private let vocabulary: [String: Int]
    /// Words longer than this many characters become `[UNK]`, as in the reference.
    private let maxCharactersPerWord = 100

    public init(vocabulary: [String: Int]) {
        self.vocabulary = vocabulary
    }

    /// Reads `vocab.txt`: one token per line, its id the line number.
    public init(vocabularyFile url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        var vocabulary: [String: Int] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            vocabulary[String(line.trimmingCharacters(in: ["\r"]))] = index
        }
        self.init(vocabulary: vocabulary)
    }

    public var vocabularySize: Int { vocabulary.count }

    /// `[CLS] pieces… [SEP]`, truncated so the whole sequence has at most `maxLength` ids.
    public func encode(_ text: String, maxLength: Int = 256) -> [Int] {
        Self.sequence(wordPieces(text), maxLength: maxLength)
    }

    /// `[CLS] pieces… [SEP]` from pieces already computed, truncated to `maxLength` ids in all.
    public static func sequence(_ pieces: [Int], maxLength: Int = 256) -> [Int] {
        [classID] + pieces.prefix(max(0, maxLength - 2)) + [separatorID]
    }

    /// The WordPiece ids of `text`, without special tokens or truncation.
    public func wordPieces(_ text: String) -> [Int] {
        var ids: [Int] = []
        for word in Self.basicTokens(text) {
            appendWordPieces(of: word, to: &ids)
        }
        return ids
    }

    private func appendWordPieces(of word: [Unicode.Scalar], to ids: inout [Int]) {
        if word.count > maxCharactersPerWord {
            ids.append(Self.unknownID)
            return
        }
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int?
            while start < end {
                var candidate = String(String.UnicodeScalarView(word[start..<end]))
                if start > 0 { candidate = "##" + candidate }
                if let id = vocabulary[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(Self.unknownID)
                return
            }
            pieces.append(id)
            start = end
        }
        ids += pieces
    }

    /// The basic tokenizer: words and punctuation marks as scalar arrays.
    static func basicTokens(_ text: String) -> [[Unicode.Scalar]] {
        // Clean, isolate CJK ideographs, split on white space.
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        func flush() {
            if !current.isEmpty { words.append(current) }
            current = []
        }
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                flush()
            } else if isCJK(scalar) {
                flush()
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        flush()
        // Per word, as the reference: lower-case, strip accents (NFD, drop combining marks), split off punctuation.
        var tokens: [[Unicode.Scalar]] = []
        for word in words {
            let normalized = String(String.UnicodeScalarView(word)).lowercased().decomposedStringWithCanonicalMapping
            var piece: [Unicode.Scalar] = []
            for scalar in normalized.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
                if isPunctuation(scalar) {
                    if !piece.isEmpty { tokens.append(piece) }
                    tokens.append([scalar])
                    piece = []
                } else {
                    piece.append(scalar)
                }
            }
            if !piece.isEmpty { tokens.append(piece) }
        }
        return tokens
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case " ", "\t", "\n", "\r": return true
        default: return scalar.properties.generalCategory == .spaceSeparator
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r": return false
        default:
            let category = scalar.properties.generalCategory
            return category == .control || category == .format
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value) {
            return true
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isCJK(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
