import Foundation

/// Turns text into index terms: Unicode word segmentation (letters and digits), full case
/// folding with accents removed, and light English stemming (plural, -ed and -ing endings), so
/// "Running", "runs" and "run" meet at one term.
public struct TextAnalyzer: Sendable {
    /// Terms shorter than this are dropped (after folding). Default 1: keep everything.
    public var minimumLength = 1
    public var stemming = true

    public init() {}

    public func terms(_ text: String) -> [String] {
        let folded = text.folding(options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil)
        var terms: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if !current.isEmpty {
                let word = String(current)
                let term = stemming ? Self.stem(word) : word
                if term.count >= minimumLength { terms.append(term) }
                current = String.UnicodeScalarView()
            }
        }
        for scalar in folded.unicodeScalars {
            let properties = scalar.properties
            if Self.isIdeograph(scalar) {
                // CJK has no spaces: each ideograph is a term of its own.
                flush()
                terms.append(String(scalar))
            } else if properties.isAlphabetic || properties.numericType != nil {
                current.append(scalar)
            } else if scalar == "'" || scalar == "\u{2019}" {
                continue  // "don't" → "dont"
            } else {
                flush()
            }
        }
        flush()
        return terms
    }

    /// A light English stemmer: conservative suffix rules that rarely merge unrelated words.
    static func stem(_ word: String) -> String {
        guard word.count > 3, word.unicodeScalars.allSatisfy({ $0.isASCII }) else { return word }
        var w = word
        if w.hasSuffix("ies"), w.count > 4 {
            w = String(w.dropLast(3)) + "y"
        } else if w.hasSuffix("sses") {
            w = String(w.dropLast(2))
        } else if w.hasSuffix("s"), !w.hasSuffix("ss"), !w.hasSuffix("us"), !w.hasSuffix("is") {
            w = String(w.dropLast())
        }
        for suffix in ["ing", "ed"] where w.hasSuffix(suffix) {
            let stem = String(w.dropLast(suffix.count))
            guard stem.count >= 3, stem.contains(where: { "aeiouy".contains($0) }) else { break }
            w = stem
            // "running" → "runn" → "run"; "hoped" → "hop" is accepted (both sides stem alike).
            if let last = w.last, let before = w.dropLast().last, last == before, !"lsz".contains(last) {
                w = String(w.dropLast())
            }
            break
        }
        return w
    }

    static func isIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0xF900...0xFAFF, 0x3040...0x30FF:
            return true
        default:
            return false
        }
    }
}
