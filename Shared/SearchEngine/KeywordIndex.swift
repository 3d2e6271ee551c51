import Foundation

/// BM25 over an inverted index, updated in place: documents can be added, replaced and removed
/// at any time and the collection statistics (document count, average length) follow.
///
/// A value type: the owner decides how it is shared (the retriever keeps one per collection
/// behind a lock).
public struct KeywordIndex: Sendable {
    public struct Parameters: Sendable {
        /// Term-frequency saturation. Default 1.2.
        public var k1: Double = 1.2
        /// Length normalisation, 0…1. Default 0.75.
        public var b: Double = 0.75
        public init(k1: Double = 1.2, b: Double = 0.75) {
            self.k1 = k1
            self.b = b
        }
    }

    public struct Hit: Sendable, Equatable {
        public var id: String
        public var score: Double
    }

    public let parameters: Parameters
    public let analyzer: TextAnalyzer
    /// term → (document number → term frequency)
    private var postings: [String: [Int: Int]] = [:]
    /// document number → its terms with frequencies (to remove it again)
    private var documents: [Int: [String: Int]] = [:]
    private var lengths: [Int: Int] = [:]
    private var numbers: [String: Int] = [:]
    private var ids: [Int: String] = [:]
    private var nextNumber = 0
    private var totalLength = 0

    public init(parameters: Parameters = .init(), analyzer: TextAnalyzer = .init()) {
        self.parameters = parameters
        self.analyzer = analyzer
    }

    public var count: Int { documents.count }

    public func contains(_ id: String) -> Bool { numbers[id] != nil }

    /// Adds a document, replacing any earlier one with the same id.
    public mutating func upsert(id: String, text: String) {
        remove(id: id)
        let number = nextNumber
        nextNumber += 1
        var frequencies: [String: Int] = [:]
        let terms = analyzer.terms(text)
        for term in terms { frequencies[term, default: 0] += 1 }
        for (term, frequency) in frequencies { postings[term, default: [:]][number] = frequency }
        documents[number] = frequencies
        lengths[number] = terms.count
        totalLength += terms.count
        numbers[id] = number
        ids[number] = id
    }

    public mutating func remove(id: String) {
        guard let number = numbers.removeValue(forKey: id) else { return }
        for term in documents[number].map({ Array($0.keys) }) ?? [] {
            postings[term]?.removeValue(forKey: number)
            if postings[term]?.isEmpty == true { postings.removeValue(forKey: term) }
        }
        documents.removeValue(forKey: number)
        totalLength -= lengths.removeValue(forKey: number) ?? 0
        ids.removeValue(forKey: number)
    }

    /// Inverse document frequency, Lucene's non-negative form: ln(1 + (N − n + 0.5) / (n + 0.5)).
    public func idf(_ term: String) -> Double {
        let n = Double(postings[term]?.count ?? 0)
        let total = Double(documents.count)
        return log(1 + (total - n + 0.5) / (n + 0.5))
    }

    /// The best `limit` documents for `query`, highest score first (ties by id), optionally only
    /// among documents `allowed` accepts.
    public func search(_ query: String, limit: Int, allowed: ((String) -> Bool)? = nil) -> [Hit] {
        guard limit > 0, !documents.isEmpty else { return [] }
        let averageLength = Double(totalLength) / Double(documents.count)
        var scores: [Int: Double] = [:]
        for term in Set(analyzer.terms(query)) {
            guard let list = postings[term] else { continue }
            let weight = idf(term)
            for (number, frequency) in list {
                let tf = Double(frequency)
                let length = Double(lengths[number] ?? 0)
                let norm = parameters.k1 * (1 - parameters.b + parameters.b * length / max(averageLength, 1e-9))
                scores[number, default: 0] += weight * tf * (parameters.k1 + 1) / (tf + norm)
            }
        }
        var hits = scores.compactMap { number, score -> Hit? in
            guard let id = ids[number], allowed?(id) ?? true else { return nil }
            return Hit(id: id, score: score)
        }
        hits.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        return Array(hits.prefix(limit))
    }
}

