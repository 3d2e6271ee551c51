import ConduitProtocol
import Foundation
import Synchronization

/// One tenant's collection: chunk records, their vector index and keyword index, searched
/// together. A document's chunks change as a unit: ``replaceDocument(_:chunks:)`` swaps the old
/// set for the new under the write lock, so a search sees either all the old chunks or all the
/// new ones, never a mix.
///
/// `@unchecked Sendable`: every stored `var` is read under the read lock and written under the
/// write lock of `lock`; the two indexes are only touched with that lock held too.
public final class SearchCollection: @unchecked Sendable {
    public struct Configuration: Sendable, Equatable, Codable {
        public var dimension: Int
        public var vector: VectorIndex.Parameters
        public var keyword: KeywordIndex.Parameters

        public init(dimension: Int, vector: VectorIndex.Parameters = .init(), keyword: KeywordIndex.Parameters = .init()) {
            self.dimension = dimension
            self.vector = vector
            self.keyword = keyword
        }
    }

    public struct Chunk: Sendable, Equatable {
        public var id: String
        public var documentID: String
        public var text: String
        public var start: Int
        public var end: Int
        public var metadata: [String: JSONValue]
        public var vector: [Float]
        /// The durable store's immutable id for this chunk version (Postgres' row id), so a
        /// snapshot can tell which chunks it already holds. 0 when there is none.
        public var storageID: Int64

        public init(id: String, documentID: String, text: String, start: Int, end: Int, metadata: [String: JSONValue], vector: [Float],
                    storageID: Int64 = 0) {
            self.id = id
            self.documentID = documentID
            self.text = text
            self.start = start
            self.end = end
            self.metadata = metadata
            self.vector = vector
            self.storageID = storageID
        }
    }

    public enum Mode: String, Sendable, Codable, CaseIterable {
        case hybrid, vector, keyword
    }

    public enum Fusion: String, Sendable, Codable {
        case rrf, normalized
    }

    public struct Query: Sendable {
        public var vector: [Float]?
        public var text: String?
        public var topK: Int
        public var mode: Mode
        public var filter: MetadataFilter?
        public var rrfK: Double
        public var weights: [String: Double]
        public var ef: Int?
        public var fusion: Fusion

        public init(vector: [Float]? = nil, text: String? = nil, topK: Int = 10, mode: Mode = .hybrid, filter: MetadataFilter? = nil,
                    rrfK: Double = 60, weights: [String: Double] = [:], ef: Int? = nil, fusion: Fusion = .rrf) {
            self.vector = vector
            self.text = text
            self.topK = topK
            self.mode = mode
            self.filter = filter
            self.rrfK = rrfK
            self.weights = weights
            self.ef = ef
            self.fusion = fusion
        }
    }

    public struct Result: Sendable, Equatable {
        public var chunkID: String
        public var documentID: String
        public var text: String
        public var start: Int
        public var end: Int
        public var metadata: [String: JSONValue]
        public var score: Double
        /// Raw per-signal scores ("vector", "keyword") of the signals that found this chunk.
        public var scores: [String: Double]
        /// 1-based per-signal ranks.
        public var ranks: [String: Int]
    }

    public struct Stats: Sendable, Equatable {
        public var documents: Int
        public var chunks: Int
        public var indexBytes: Int
        public init(documents: Int, chunks: Int, indexBytes: Int) {
            self.documents = documents
            self.chunks = chunks
            self.indexBytes = indexBytes
        }
    }

    public struct QueryError: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var parameter: String
        public var description: String { message }
        public init(message: String, parameter: String) {
            self.message = message
            self.parameter = parameter
        }
    }

    struct Record {
        var id: String
        var documentID: String
        var text: String
        var start: Int
        var end: Int
        var metadata: [String: JSONValue]
        var storageID: Int64
    }

    public let configuration: Configuration
    let lock = ReadWriteLock()
    var vectors: VectorIndex
    var keywords: KeywordIndex
    var records: [Record?] = []
    var freeLabels: [UInt32] = []
    var labelOfChunk: [String: UInt32] = [:]
    var chunksOfDocument: [String: [UInt32]] = [:]
    /// Bumped by every change; a snapshot records the one it saw.
    var changeCount = 0

    /// Changes so far (a snapshot is due when this moved since the last one).
    public var changes: Int { reading { changeCount } }

    public init(configuration: Configuration, capacity: Int = 64) {
        self.configuration = configuration
        vectors = VectorIndex(dimension: configuration.dimension, parameters: configuration.vector, capacity: capacity)
        keywords = KeywordIndex(parameters: configuration.keyword)
    }

    func reading<T>(_ body: () throws -> T) rethrows -> T { try lock.reading(body) }

    func writing<T>(_ body: () throws -> T) rethrows -> T { try lock.writing(body) }

    public var stats: Stats {
        reading { Stats(documents: chunksOfDocument.count, chunks: labelOfChunk.count, indexBytes: vectors.memoryBytes) }
    }

    public func documentIDs() -> [String] { reading { Array(chunksOfDocument.keys) } }

    /// Replaces every chunk of `documentID` with `chunks` in one step. Vectors must have the
    /// collection's dimension.
    public func replaceDocument(_ documentID: String, chunks: [Chunk]) throws {
        for chunk in chunks where chunk.vector.count != configuration.dimension {
            throw QueryError(message: "chunk \(chunk.id) has a \(chunk.vector.count)-dimensional vector; the collection has \(configuration.dimension)", parameter: "vector")
        }
        writing {
            changeCount += 1
            removeLocked(documentID)
            var labels: [UInt32] = []
            for chunk in chunks {
                // A chunk id claimed by another document moves to this one.
                if let previous = labelOfChunk[chunk.id] { removeLabel(previous) }
                labels.append(insertLocked(chunk, documentID: documentID))
            }
            if !labels.isEmpty { chunksOfDocument[documentID] = labels }
        }
    }

    /// Indexes one chunk under a free label (the caller holds the write lock and files the
    /// label under its document).
    func insertLocked(_ chunk: Chunk, documentID: String) -> UInt32 {
        let label = freeLabels.popLast() ?? UInt32(records.count)
        if Int(label) == records.count { records.append(nil) }
        records[Int(label)] = Record(id: chunk.id, documentID: documentID, text: chunk.text, start: chunk.start,
                                     end: chunk.end, metadata: chunk.metadata, storageID: chunk.storageID)
        labelOfChunk[chunk.id] = label
        vectors.upsert(label: label, vector: chunk.vector)
        keywords.upsert(label: label, text: chunk.text)
        return label
    }

    public func removeDocument(_ documentID: String) {
        writing {
            changeCount += 1
            removeLocked(documentID)
        }
    }

    private func removeLocked(_ documentID: String) {
        for label in chunksOfDocument.removeValue(forKey: documentID) ?? [] { removeLabel(label) }
    }

    private func removeLabel(_ label: UInt32) {
        guard let record = records[Int(label)] else { return }
        if var siblings = chunksOfDocument[record.documentID] {
            siblings.removeAll { $0 == label }
            chunksOfDocument[record.documentID] = siblings.isEmpty ? nil : siblings
        }
        labelOfChunk.removeValue(forKey: record.id)
        records[Int(label)] = nil
        vectors.remove(label: label)
        keywords.remove(label: label)
        freeLabels.append(label)
    }

    /// Runs `query`: vector, keyword or both fused. Each signal fetches more candidates than
    /// `topK` (at least 50) so fusion has overlap to work with; the filter applies inside each.
    public func search(_ query: Query) throws -> [Result] {
        guard (1...1000).contains(query.topK) else { throw QueryError(message: "top_k must be between 1 and 1000", parameter: "top_k") }
        if let vector = query.vector, vector.count != configuration.dimension {
            throw QueryError(message: "vector has \(vector.count) dimensions; the collection has \(configuration.dimension)", parameter: "vector")
        }
        if query.mode != .keyword, query.vector == nil {
            throw QueryError(message: "mode '\(query.mode.rawValue)' needs a query vector or text to embed", parameter: "vector")
        }
        if query.mode != .vector, (query.text ?? "").isEmpty {
            throw QueryError(message: "mode '\(query.mode.rawValue)' needs query text", parameter: "query")
        }
        return reading {
            let filter: ((UInt32) -> Bool)? = query.filter.map { filter in
                { [records] label in records[Int(label)].map { filter.matches($0.metadata) } ?? false }
            }
            let depth = query.mode == .hybrid ? max(50, query.topK * 2) : query.topK
            var lists: [String: [(id: UInt32, score: Double)]] = [:]
            if query.mode != .keyword, let vector = query.vector {
                lists["vector"] = vectors.search(vector, k: depth, ef: query.ef.map { max($0, depth) }, filter: filter)
                    .map { ($0.label, Double($0.score)) }
            }
            if query.mode != .vector, let text = query.text {
                lists["keyword"] = keywords.search(text, limit: depth, filter: filter).map { ($0.label, $0.score) }
            }
            let fused: [RankFusion.Result<UInt32>]
            switch query.fusion {
            case .rrf: fused = RankFusion.reciprocalRank(lists, k: query.rrfK, weights: query.weights, limit: query.topK)
            case .normalized: fused = RankFusion.normalizedScores(lists, weights: query.weights, limit: query.topK)
            }
            return fused.compactMap { result in
                guard let record = records[Int(result.id)] else { return nil }
                // A single signal keeps its own score; fusion's score is the fused one.
                let score = lists.count == 1 ? result.signals.values.first?.score ?? result.score : result.score
                return Result(chunkID: record.id, documentID: record.documentID, text: record.text, start: record.start,
                              end: record.end, metadata: record.metadata, score: score,
                              scores: result.signals.mapValues(\.score), ranks: result.signals.mapValues(\.rank))
            }
        }
    }
}

/// Every collection of every tenant. Tenant and collection are hard boundaries: a search
/// reaches exactly one ``SearchCollection``, named by both, so no filter can reach across.
public final class SearchCatalog: Sendable {
    public struct Key: Hashable, Sendable, Comparable {
        public var tenant: String
        public var collection: String
        public init(tenant: String, collection: String) {
            self.tenant = tenant
            self.collection = collection
        }
        public static func < (lhs: Key, rhs: Key) -> Bool { (lhs.tenant, lhs.collection) < (rhs.tenant, rhs.collection) }
    }

    private let collections = Mutex<[Key: SearchCollection]>([:])

    public init() {}

    public func collection(_ key: Key) -> SearchCollection? { collections.withLock { $0[key] } }

    /// The collection for `key`, created with `configuration` if it does not exist yet.
    public func collection(_ key: Key, orCreate configuration: @autoclosure () -> SearchCollection.Configuration) -> SearchCollection {
        collections.withLock { all in
            if let existing = all[key] { return existing }
            let created = SearchCollection(configuration: configuration())
            all[key] = created
            return created
        }
    }

    public func insert(_ collection: SearchCollection, for key: Key) { collections.withLock { $0[key] = collection } }

    @discardableResult
    public func remove(_ key: Key) -> SearchCollection? { collections.withLock { $0.removeValue(forKey: key) } }

    public func allKeys() -> [Key] { collections.withLock { $0.keys.sorted() } }

    public func keys(tenant: String) -> [Key] { collections.withLock { $0.keys.filter { $0.tenant == tenant }.sorted() } }
}
