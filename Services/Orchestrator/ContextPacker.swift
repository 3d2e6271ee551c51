import ConduitProtocol

/// Chooses which retrieved chunks go into the prompt: relevant enough, not near-copies of a
/// better one, and within the tokens the context window leaves.
enum ContextPacker {
    /// The cosine similarity below which a chunk does not count as relevant (hybrid and vector
    /// modes) when the request sets no `min_score`. all-MiniLM-L6-v2 puts unrelated passages
    /// near 0.0–0.2 and passages answering a question at 0.4 and above.
    static let defaultMinimumSimilarity = 0.3
    /// Word-trigram Jaccard similarity above which two chunks count as the same text.
    static let duplicateSimilarity = 0.8

    /// Chunks whose relevance reaches `min_score`: the vector similarity (chunks the vector
    /// search did not find are not relevant in hybrid or vector mode), or in keyword mode the
    /// BM25 score.
    static func relevant(_ chunks: [RetrievedChunk], options: RAGOptions) -> [RetrievedChunk] {
        let mode = options.mode ?? .hybrid
        return chunks.filter { chunk in
            if mode == .keyword {
                return (chunk.scores["keyword"] ?? chunk.score) > (options.minScore ?? 0)
            }
            guard let similarity = chunk.scores["vector"] else { return false }
            return similarity >= (options.minScore ?? defaultMinimumSimilarity)
        }
    }

    /// Keeps the first (best-ranked) of every group of near-identical chunks.
    static func droppingNearDuplicates(_ chunks: [RetrievedChunk]) -> [RetrievedChunk] {
        var kept: [(chunk: RetrievedChunk, shingles: Set<String>)] = []
        for chunk in chunks {
            let shingles = Self.shingles(chunk.text)
            let duplicate = kept.contains { other in
                other.chunk.chunkID == chunk.chunkID || jaccard(shingles, other.shingles) >= duplicateSimilarity
            }
            if !duplicate { kept.append((chunk, shingles)) }
        }
        return kept.map(\.chunk)
    }

    /// The chunks, in rank order, whose cost fits in `budget` tokens; one too large is skipped
    /// and smaller ones after it may still fit.
    static func pack(_ chunks: [RetrievedChunk], costs: [Int], budget: Int) -> [RetrievedChunk] {
        var left = budget
        var packed: [RetrievedChunk] = []
        for (chunk, cost) in zip(chunks, costs) where cost <= left {
            packed.append(chunk)
            left -= cost
        }
        return packed
    }

    /// How a source appears in the prompt.
    static func sourceText(number: Int, chunk: RetrievedChunk) -> String {
        let title = chunk.metadata["title"]?.stringValue ?? chunk.metadata["heading"]?.stringValue ?? chunk.metadata["source"]?.stringValue
        return "[\(number)]" + (title.map { " \($0)" } ?? "") + "\n" + chunk.text
    }

    static let instructions = """
        Answer the user's question using the numbered sources below. After each sentence that \
        uses a source, cite it by its number in square brackets, for example: "The tent weighs \
        2 kilograms [1]." Use only these numbers. If the sources do not contain the answer, say so.

        Sources:
        """

    static func nothingRelevant(collection: String) -> String {
        """
        No document in the collection '\(collection)' is relevant to the user's question. Tell the \
        user that the documents do not contain the answer. Do not cite sources.
        """
    }

    /// The messages with the retrieval text added to the leading system message (or a new one).
    static func messages(_ messages: [ChatMessage], adding text: String) -> [ChatMessage] {
        var result = messages
        if let first = result.first, first.role == "system", case .text(let existing)? = first.content {
            result[0].content = .text(existing + "\n\n" + text)
        } else {
            result.insert(.system(text), at: 0)
        }
        return result
    }

    static func shingles(_ text: String) -> Set<String> {
        let words = TextWords.words(text)
        guard words.count >= 3 else { return Set(words) }
        return Set((0...(words.count - 3)).map { words[$0..<($0 + 3)].joined(separator: " ") })
    }

    static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        guard !a.isEmpty || !b.isEmpty else { return 1 }
        return Double(a.intersection(b).count) / Double(a.union(b).count)
    }
}

/// Lower-cased words (letters and digits) of a text.
enum TextWords {
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    static let stopwords: Set<String> = [
        "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "by", "at", "from", "as", "is", "are",
        "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "which", "what", "who", "how",
        "when", "where", "why", "do", "does", "did", "can", "could", "should", "would", "will", "i", "you", "we",
        "they", "he", "she", "my", "your", "our", "their", "his", "her", "there", "about", "into", "than", "then",
        "so", "if", "but", "also", "has", "have", "had", "according", "source", "sources",
    ]

    /// Words that carry content: not stopwords, not citation numbers.
    static func contentWords(_ text: String) -> Set<String> {
        Set(words(text).filter { !stopwords.contains($0) && $0.count > 1 })
    }
}
