import Foundation

/// Decides whether a cached answer to one question may serve another that embeds close to it.
///
/// Embeddings place "enable 2FA" next to "disable 2FA" and "top 5" next to "top 10"; those pairs
/// want different answers. Two questions pass only when they agree on negation, numbers,
/// polarity words (enable/disable, add/remove…), named entities and quoted strings; what may
/// differ is phrasing.
public enum CacheGuard {
    public struct Rejection: Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// nil when `question` may be answered by the answer cached for `cached`.
    public static func check(_ question: String, against cached: String) -> Rejection? {
        let a = Features(question), b = Features(cached)
        if a.negations != b.negations { return Rejection(reason: "negation differs") }
        if a.numbers != b.numbers { return Rejection(reason: "numbers differ") }
        if a.quoted != b.quoted { return Rejection(reason: "quoted strings differ") }
        if a.entities != b.entities { return Rejection(reason: "named entities differ") }
        let onlyInA = a.words.subtracting(b.words), onlyInB = b.words.subtracting(a.words)
        for word in onlyInA.union(onlyInB) {
            if let opposite = opposites[word], a.words.contains(opposite) || b.words.contains(opposite) {
                return Rejection(reason: "'\(word)' against '\(opposite)'")
            }
            if polarityWords.contains(word) { return Rejection(reason: "'\(word)' in one question only") }
        }
        // "able" vs "unable", "connect" vs "disconnect": a negating prefix on a shared root.
        for word in onlyInA {
            if let other = onlyInB.first(where: { isNegatedForm($0, of: word) || isNegatedForm(word, of: $0) }) {
                return Rejection(reason: "'\(word)' against '\(other)'")
            }
        }
        return nil
    }

    struct Features {
        var words: Set<String> = []
        /// How many negations, so "not … not" and one "not" differ, but word order does not matter.
        var negations = 0
        var numbers: [String] = []
        var quoted: Set<String> = []
        var entities: Set<String> = []

        init(_ text: String) {
            quoted = Set(CacheGuard.quotedStrings(text))
            var sentenceStart = true
            for raw in CacheGuard.tokens(text) {
                let word = raw.trimmingSentenceEnd.lowercased()
                let core = word.replacingOccurrences(of: "’", with: "'")
                if CacheGuard.negationWords.contains(core) || core.hasSuffix("n't") {
                    negations += 1
                }
                if let number = CacheGuard.number(core) {
                    numbers.append(number)
                } else if CacheGuard.isEntity(raw, atSentenceStart: sentenceStart) {
                    entities.insert(word)
                }
                words.insert(core)
                sentenceStart = raw.last.map { ".!?".contains($0) } ?? false
            }
            numbers.sort()
        }
    }

    /// Words with their trailing punctuation kept (to see sentence ends); quotes stripped.
    static func tokens(_ text: String) -> [String] {
        text.split(whereSeparator: { $0.isWhitespace }).compactMap { piece in
            let trimmed = piece.trimmingCharactersOf("\"'“”‘`()[]{},;:")
            return trimmed.isEmpty ? nil : trimmed
        }.map { token in
            // Keep a sentence-ending mark as the token's last character, drop other trailing marks.
            var token = token
            while let last = token.last, !last.isLetter, !last.isNumber, !".!?".contains(last) { token.removeLast() }
            return token
        }.filter { !$0.isEmpty }
    }

    static func quotedStrings(_ text: String) -> [String] {
        var found: [String] = []
        let pairs: [(Character, Character)] = [("\"", "\""), ("“", "”"), ("`", "`"), ("'", "'")]
        for (open, close) in pairs {
            var inside: String?
            for (index, character) in zip(text.indices, text) {
                if var current = inside {
                    if character == close {
                        // An apostrophe inside a word ("don't") is not a closing quote.
                        if close == "'", text.index(after: index) < text.endIndex, text[text.index(after: index)].isLetter {
                            current.append(character)
                            inside = current
                            continue
                        }
                        if !current.isEmpty { found.append(current.lowercased()) }
                        inside = nil
                    } else {
                        current.append(character)
                        inside = current
                    }
                } else if character == open {
                    if open == "'", index > text.startIndex, text[text.index(before: index)].isLetter { continue }
                    inside = ""
                }
            }
        }
        return found.sorted()
    }

    /// Digits (with a decimal point or separators removed) or a number word, normalised.
    static func number(_ word: String) -> String? {
        let stripped = word.filter { $0 != "," && $0 != "." && $0 != "!" && $0 != "?" }
        if let first = stripped.first, first.isNumber, stripped.contains(where: \.isNumber) {
            // "5", "10k", "2fa": the digits are what must match.
            return String(word.trimmingSentenceEnd.filter { $0.isNumber || $0 == "." })
        }
        return numberWords[stripped].map(String.init)
    }

    /// Capitalised inside a sentence, an acronym, or letters mixed with digits or inner capitals
    /// ("Paris", "AWS", "2FA", "iOS", "GPT-4").
    static func isEntity(_ raw: String, atSentenceStart: Bool) -> Bool {
        let word = raw.trimmingSentenceEnd
        guard let first = word.first, word.count > 1 else { return false }
        let letters = word.filter(\.isLetter)
        if letters.count >= 2, letters.allSatisfy(\.isUppercase) { return true }
        if word.contains(where: \.isNumber), word.contains(where: \.isLetter) { return true }
        if word.dropFirst().contains(where: \.isUppercase) { return true }
        return first.isUppercase && !atSentenceStart && word.lowercased() != "i"
    }

    static func isNegatedForm(_ word: String, of root: String) -> Bool {
        guard root.count >= 3 else { return false }
        return ["un", "dis", "non", "de", "in", "im", "ir", "il", "anti"].contains { prefix in
            word == prefix + root || word == prefix + "-" + root
        }
    }

    static let negationWords: Set<String> = [
        "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without", "cannot", "cant",
        "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "shouldnt", "couldnt", "wouldnt", "except",
    ]

    /// Words that flip an answer when one question has them and the other does not.
    static let polarityWords: Set<String> = ["only", "all", "any", "every", "least", "most", "worst", "best"]

    static let opposites: [String: String] = {
        let pairs = [
            ("enable", "disable"), ("enabled", "disabled"), ("enabling", "disabling"), ("allow", "deny"), ("allow", "block"),
            ("include", "exclude"), ("add", "remove"), ("increase", "decrease"), ("start", "stop"), ("open", "close"),
            ("lock", "unlock"), ("encrypt", "decrypt"), ("connect", "disconnect"), ("before", "after"), ("above", "below"),
            ("more", "less"), ("more", "fewer"), ("max", "min"), ("maximum", "minimum"), ("first", "last"), ("buy", "sell"),
            ("import", "export"), ("upload", "download"), ("accept", "reject"), ("on", "off"), ("true", "false"),
            ("yes", "no"), ("up", "down"), ("login", "logout"), ("subscribe", "unsubscribe"), ("install", "uninstall"),
            ("show", "hide"), ("win", "lose"), ("public", "private"), ("inbound", "outbound"), ("input", "output"),
            ("ascending", "descending"), ("highest", "lowest"), ("largest", "smallest"), ("best", "worst"),
            ("cheapest", "expensive"), ("fastest", "slowest"), ("oldest", "newest"), ("old", "new"), ("min", "max"),
            ("success", "failure"), ("succeed", "fail"), ("pass", "fail"), ("valid", "invalid"), ("safe", "unsafe"),
            ("internal", "external"), ("read", "write"), ("create", "delete"), ("grant", "revoke"), ("inside", "outside"),
            ("left", "right"), ("north", "south"), ("east", "west"), ("male", "female"), ("always", "never"),
            ("with", "without"), ("can", "cannot"), ("should", "shouldnt"), ("positive", "negative"), ("rise", "fall"),
            ("gain", "loss"), ("profit", "loss"), ("early", "late"), ("earlier", "later"), ("higher", "lower"),
            ("faster", "slower"), ("bigger", "smaller"), ("larger", "smaller"), ("longer", "shorter"), ("hot", "cold"),
        ]
        var map: [String: String] = [:]
        for (a, b) in pairs {
            map[a] = b
            map[b] = a
        }
        return map
    }()

    static let numberWords: [String: Int] = [
        "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
        "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
        "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
        "hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "single": 1,
        "double": 2, "twice": 2, "triple": 3, "half": 50, "first": 1, "second": 2, "third": 3,
    ]
}

extension StringProtocol {
    fileprivate func trimmingCharactersOf(_ set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }

    fileprivate var trimmingSentenceEnd: String {
        var slice = Substring(self)
        while let last = slice.last, ".!?".contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
