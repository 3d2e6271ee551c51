import Foundation

/// BM25 over an inverted index, updated in place: documents can be added, replaced and removed
/// at any time and the collection statistics (document count, document frequencies, average
/// length) follow. Documents are keyed by caller-chosen `UInt32` labels, best kept dense (the
/// per-label arrays grow to the largest label).
///
/// Postings are append-only: replacing or removing a document bumps its generation, so its
/// old postings stop counting at once and are swept out when they outnumber the live ones.
///
/// A value type: the owner decides how it is shared (the retriever keeps one per collection
/// behind a lock).
public struct KeywordIndex: Sendable {
    public struct Parameters: Sendable, Equatable, Codable {
        /// Term-frequency saturation. Default 1.2.
        public var k1: Double
        /// Length normalisation, 0…1. Default 0.75.
        public var b: Double
        public init(k1: Double = 1.2, b: Double = 0.75) {
            self.k1 = k1
            self.b = b
        }
    }

    public struct Hit: Sendable, Equatable {
        public var label: UInt32
        public var score: Double
    }

    private struct Posting {
        var label: UInt32
        var generation: UInt32
        var frequency: UInt32
    }

    public let parameters: Parameters
    public let analyzer: TextAnalyzer
    private var termIDs: [String: Int32] = [:]
    private var postings: [[Posting]] = []
    private var documentFrequency: [Int32] = []
    private var stalePostings: [Int32] = []
    /// Per label: its distinct terms (to update frequencies on removal), length, generation.
    private var documentTerms: [[Int32]] = []
    private var lengths: [Int32] = []
    private var generations: [UInt32] = []
    private var present: [Bool] = []
    public private(set) var count = 0
    private var totalLength = 0

    public init(parameters: Parameters = .init(), analyzer: TextAnalyzer = .init()) {
        self.parameters = parameters
        self.analyzer = analyzer
    }

    public func contains(_ label: UInt32) -> Bool { Int(label) < present.count && present[Int(label)] }

    /// Adds a document, replacing any earlier one with the same label.
    public mutating func upsert(label: UInt32, text: String) {
        remove(label: label)
        let slot = Int(label)
        if slot >= present.count {
            let grown = max(slot + 1, present.count * 2)
            present += Array(repeating: false, count: grown - present.count)
            lengths += Array(repeating: 0, count: grown - lengths.count)
            generations += Array(repeating: 0, count: grown - generations.count)
            documentTerms += Array(repeating: [], count: grown - documentTerms.count)
        }
        let terms = analyzer.terms(text)
        var frequencies: [Int32: UInt32] = [:]
        for term in terms {
            let id: Int32
            if let known = termIDs[term] {
                id = known
            } else {
                id = Int32(postings.count)
                termIDs[term] = id
                postings.append([])
                documentFrequency.append(0)
                stalePostings.append(0)
            }
            frequencies[id, default: 0] += 1
        }
        generations[slot] &+= 1
        for (term, frequency) in frequencies {
            postings[Int(term)].append(Posting(label: label, generation: generations[slot], frequency: frequency))
            documentFrequency[Int(term)] += 1
        }
        documentTerms[slot] = Array(frequencies.keys)
        lengths[slot] = Int32(terms.count)
        present[slot] = true
        totalLength += terms.count
        count += 1
    }

    public mutating func remove(label: UInt32) {
        let slot = Int(label)
        guard contains(label) else { return }
        for term in documentTerms[slot] {
            documentFrequency[Int(term)] -= 1
            stalePostings[Int(term)] += 1
            if Int(stalePostings[Int(term)]) * 2 > postings[Int(term)].count { sweep(term) }
        }
        generations[slot] &+= 1
        documentTerms[slot] = []
        totalLength -= Int(lengths[slot])
        lengths[slot] = 0
        present[slot] = false
        count -= 1
    }

    private mutating func sweep(_ term: Int32) {
        let live = postings[Int(term)].filter(isLive)
        postings[Int(term)] = live
        stalePostings[Int(term)] = 0
    }

    private func isLive(_ posting: Posting) -> Bool {
        present[Int(posting.label)] && generations[Int(posting.label)] == posting.generation
    }

    /// Inverse document frequency, Lucene's non-negative form: ln(1 + (N − n + 0.5) / (n + 0.5)).
    public func idf(_ term: String) -> Double {
        let analyzed = analyzer.terms(term).first ?? term
        let n = Double(termIDs[analyzed].map { documentFrequency[Int($0)] } ?? 0)
        return log(1 + (Double(count) - n + 0.5) / (n + 0.5))
    }

    /// The best `limit` documents for `query`, highest score first (ties by label), optionally
    /// only among documents `filter` accepts.
    public func search(_ query: String, limit: Int, filter: ((UInt32) -> Bool)? = nil) -> [Hit] {
        guard limit > 0, count > 0 else { return [] }
        let averageLength = max(Double(totalLength) / Double(count), 1e-9)
        let k1 = parameters.k1
        let b = parameters.b
        var scores = [Double](repeating: 0, count: present.count)
        var touched: [UInt32] = []
        for term in Set(analyzer.terms(query)) {
            guard let id = termIDs[term], documentFrequency[Int(id)] > 0 else { continue }
            let n = Double(documentFrequency[Int(id)])
            let weight = log(1 + (Double(count) - n + 0.5) / (n + 0.5))
            for posting in postings[Int(id)] where isLive(posting) {
                let slot = Int(posting.label)
                let tf = Double(posting.frequency)
                let norm = k1 * (1 - b + b * Double(lengths[slot]) / averageLength)
                if scores[slot] == 0 { touched.append(posting.label) }
                scores[slot] += weight * tf * (k1 + 1) / (tf + norm)
            }
        }
        var best = TopK(limit: limit)
        for label in touched where filter?(label) ?? true {
            best.offer(Hit(label: label, score: scores[Int(label)]))
        }
        return best.sorted()
    }
}

/// The best `limit` hits seen, by score then label (a min-heap on the worst kept).
struct TopK {
    let limit: Int
    private var heap: [KeywordIndex.Hit] = []

    init(limit: Int) { self.limit = limit }

    /// Whether `first` ranks below `second`.
    private static func worse(_ first: KeywordIndex.Hit, _ second: KeywordIndex.Hit) -> Bool {
        first.score != second.score ? first.score < second.score : first.label > second.label
    }

    mutating func offer(_ hit: KeywordIndex.Hit) {
        if heap.count < limit {
            heap.append(hit)
            var child = heap.count - 1
            while child > 0, Self.worse(heap[child], heap[(child - 1) / 2]) {
                heap.swapAt(child, (child - 1) / 2)
                child = (child - 1) / 2
            }
        } else if Self.worse(heap[0], hit) {
            heap[0] = hit
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var lowest = parent
                if left < heap.count, Self.worse(heap[left], heap[lowest]) { lowest = left }
                if right < heap.count, Self.worse(heap[right], heap[lowest]) { lowest = right }
                if lowest == parent { break }
                heap.swapAt(parent, lowest)
                parent = lowest
            }
        }
    }

    func sorted() -> [KeywordIndex.Hit] { heap.sorted { Self.worse($1, $0) } }
}
