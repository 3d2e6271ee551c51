import Providers

/// How hard a request is, from the last user message alone, in microseconds: its length, its
/// structure (clauses, sentences, code) and the words that ask for depth ("design", "prove",
/// "trade-offs") or for a short answer ("what is", "convert"). No model is called.
///
/// The weights and the two thresholds were fitted on the `dev` half of
/// `deploy/routing/labelled-prompts.jsonl`; `make bench-cost` reports accuracy on the `test` half.
public struct ComplexityClassifier: Sendable {
    public struct Verdict: Sendable, Hashable {
        public var complexity: Complexity
        public var score: Double
    }

    /// Below `simpleBelow` a request is simple; from `complexFrom` on, complex.
    public var simpleBelow = 1.2
    public var complexFrom = 4.0

    public init() {}

    public func classify(_ text: String) -> Verdict {
        let score = Self.score(text)
        let complexity: Complexity = score < simpleBelow ? .simple : score < complexFrom ? .medium : .complex
        return Verdict(complexity: complexity, score: (score * 100).rounded() / 100)
    }

    static func score(_ text: String) -> Double {
        let lower = text.lowercased()
        var words = 0
        var deep = 0
        var asks = 0
        var clauses = 0
        var sentences = 0
        var word = ""
        func endWord() {
            guard !word.isEmpty else { return }
            words += 1
            if deepWords.contains(word) { deep += 1 }
            if askWords.contains(word) { asks += 1 }
            word = ""
        }
        var previousEndsSentence = false
        for scalar in lower.unicodeScalars {
            if previousEndsSentence, scalar.properties.isWhitespace { sentences += 1 }
            previousEndsSentence = scalar == "." || scalar == "?" || scalar == "!"
            switch scalar {
            case "a"..."z", "0"..."9", "'", "+", "#", "-": word.unicodeScalars.append(scalar)
            default:
                endWord()
                if scalar == "," || scalar == ";" || scalar == ":" { clauses += 1 }
            }
        }
        endWord()
        if previousEndsSentence { sentences += 1 }
        var score = Double(min(words, 80)) / 10
        score += 1.2 * Double(deep)
        score += 0.6 * Double(min(asks, 3))
        score += 0.35 * Double(clauses)
        score += 0.3 * Double(max(0, sentences - 1))
        if lower.contains("```") { score += 2 }
        if words < 12, shortAnswerOpenings.contains(where: { lower.hasPrefix($0) }) { score -= 1.5 }
        return score
    }

    /// Words that ask for depth: design, proof, analysis, planning, rigour.
    static let deepWords: Set<String> = [
        "design", "architecture", "prove", "proof", "derive", "analyze", "analyse", "analysis", "evaluate", "critically",
        "trade-offs", "tradeoffs", "strategy", "plan", "optimization", "optimize", "implement", "threat", "distributed",
        "consistency", "concurrent", "formal", "thorough", "detailed", "in-depth", "depth", "comprehensive", "research",
        "essay", "sensitivity", "systematic", "migration", "reason", "diagnose", "model", "complexity", "specification",
        "guarantees", "scale", "step", "curriculum", "framework", "recommend", "policy", "legal", "debugging",
    ]

    /// Words that ask for an explanation or a piece of writing.
    static let askWords: Set<String> = [
        "explain", "write", "summarize", "compare", "difference", "differences", "describe", "outline", "draft", "rewrite",
        "translate", "tips", "pros", "cons", "how", "why", "function", "script", "query", "create", "give", "example",
        "plan", "what",
    ]

    /// Openings of short questions that want a short answer.
    static let shortAnswerOpenings = [
        "what is", "what's", "who", "how many", "define", "convert", "spell", "is ", "which", "name ", "hi", "hello",
        "thanks", "ok", "good ", "how do you say", "what does", "what year", "what color", "what time", "capitalize",
        "sort ", "can you recommend", "tell me a", "give me a synonym", "how do i spell", "what language",
    ]
}
