import Foundation
import ConduitProtocol

/// Turns an answer and the sources it was given into `conduit.citations` and a confidence.
///
/// A number the answer writes as `[n]` (or `[n, m]`) is a citation when source n exists;
/// numbers outside the sources count against the confidence. When the answer cites nothing
/// but one of its sentences plainly restates a sentence of a source (three or more content
/// words in common, and at least half of the shorter one's), that source is listed with
/// `cited: false`.
struct CitationBuilder: Sendable {
    struct Source: Sendable, Hashable {
        var number: Int
        var collection: String
        var chunk: RetrievedChunk
    }

    let sources: [Source]

    struct Result: Sendable, Equatable {
        var citations: [Citation]
        var confidence: Double
    }

    func build(answer: String) -> Result {
        guard !sources.isEmpty else { return Result(citations: [], confidence: 0) }
        let answerWords = TextWords.contentWords(answer)
        let markers = Self.markers(in: answer)
        let byNumber = Dictionary(uniqueKeysWithValues: sources.map { ($0.number, $0) })
        var citations = markers.compactMap { number in
            byNumber[number].map { citation(for: $0, answerWords: answerWords, cited: true) }
        }
        if markers.isEmpty {
            let answerSentences = Self.sentences(answer).map { TextWords.contentWords($0.text) }
            citations = sources.compactMap { source in
                let restated = Self.sentences(source.chunk.text).contains { sentence in
                    let words = TextWords.contentWords(sentence.text)
                    return answerSentences.contains { said in
                        let shared = said.intersection(words).count
                        return shared >= 3 && Double(shared) >= 0.5 * Double(min(said.count, words.count))
                    }
                }
                return restated ? citation(for: source, answerWords: answerWords, cited: false) : nil
            }
        }
        return Result(citations: citations, confidence: confidence(markers: markers, citations: citations))
    }

    /// Half from how strongly the cited chunks matched the query (their vector similarity), half
    /// from whether the answer's citation numbers name chunks that were retrieved.
    private func confidence(markers: [Int], citations: [Citation]) -> Double {
        let similarity: (Citation) -> Double = { min(1, max(0, $0.scores["vector"] ?? 0)) }
        let strength: Double
        if let best = citations.map(similarity).max() {
            strength = best
        } else {
            strength = 0.5 * (sources.map { min(1, max(0, $0.chunk.scores["vector"] ?? 0)) }.max() ?? 0)
        }
        let validity: Double
        if !markers.isEmpty {
            validity = Double(citations.filter(\.cited).count) / Double(markers.count)
        } else {
            validity = citations.isEmpty ? 0 : 0.5
        }
        return ((0.5 * strength + 0.5 * validity) * 1000).rounded() / 1000
    }

    private func citation(for source: Source, answerWords: Set<String>, cited: Bool) -> Citation {
        let chunk = source.chunk
        let span = bestSentence(of: chunk, answerWords: answerWords)
        var scores = chunk.scores
        scores["score"] = chunk.score
        return Citation(
            index: source.number, collection: source.collection, documentID: chunk.docID, chunkID: chunk.chunkID,
            title: chunk.metadata["title"]?.stringValue ?? chunk.metadata["heading"]?.stringValue,
            source: chunk.metadata["source"]?.stringValue,
            start: chunk.start + span.start, end: chunk.start + span.end, quote: span.text, scores: scores, cited: cited)
    }

    /// The chunk's sentence sharing the most content words with the answer (the first on ties),
    /// with its Unicode scalar offsets inside the chunk.
    private func bestSentence(of chunk: RetrievedChunk, answerWords: Set<String>) -> Span {
        let spans = Self.sentences(chunk.text)
        var best = spans.first ?? Span(start: 0, end: chunk.text.unicodeScalars.count, text: chunk.text)
        var bestShared = -1
        for span in spans {
            let shared = TextWords.contentWords(span.text).intersection(answerWords).count
            if shared > bestShared {
                best = span
                bestShared = shared
            }
        }
        return best
    }

    struct Span: Sendable, Equatable {
        var start: Int
        var end: Int
        var text: String
    }

    /// Sentences (ending at `.`, `!`, `?` before whitespace, or at a line break), trimmed, with
    /// their Unicode scalar offsets.
    static func sentences(_ text: String) -> [Span] {
        let scalars = Array(text.unicodeScalars)
        var spans: [Span] = []
        var start = 0
        func close(_ end: Int) {
            var first = start, last = end
            while first < last, scalars[first].properties.isWhitespace { first += 1 }
            while last > first, scalars[last - 1].properties.isWhitespace { last -= 1 }
            if first < last {
                var piece = String.UnicodeScalarView()
                piece.append(contentsOf: scalars[first..<last])
                spans.append(Span(start: first, end: last, text: String(piece)))
            }
            start = end
        }
        for index in scalars.indices {
            let scalar = scalars[index]
            if scalar == "\n" {
                close(index + 1)
            } else if scalar == "." || scalar == "!" || scalar == "?" {
                if index + 1 == scalars.count || scalars[index + 1].properties.isWhitespace { close(index + 1) }
            }
        }
        close(scalars.count)
        return spans
    }

    /// Source numbers the answer cites, in order of first appearance: `[1]`, `[2, 3]`, `[4][5]`.
    static func markers(in answer: String) -> [Int] {
        var numbers: [Int] = []
        var seen = Set<Int>()
        var rest = Substring(answer)
        while let open = rest.firstIndex(of: "[") {
            rest = rest[rest.index(after: open)...]
            guard let close = rest.firstIndex(of: "]") else { break }
            let inside = rest[..<close]
            let parts = inside.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigitCharacter) }) {
                for number in parts.compactMap({ Int($0) }) where seen.insert(number).inserted { numbers.append(number) }
            }
            rest = rest[rest.index(after: close)...]
        }
        return numbers
    }
}

private extension Character {
    var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}
