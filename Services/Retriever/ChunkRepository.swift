import ConduitProtocol
import Foundation
import Postgres
import SearchEngine

/// Where the retriever's chunks live durably: the source of truth the in-memory indexes are
/// rebuilt from.
protocol ChunkRepository: Sendable {
    func collections() async throws -> [(SearchCatalog.Key, SearchCollection.Configuration)]
    /// False if the collection already exists.
    func createCollection(_ key: SearchCatalog.Key, configuration: SearchCollection.Configuration) async throws -> Bool
    func deleteCollection(_ key: SearchCatalog.Key) async throws -> Bool
    func deleteDocument(_ key: SearchCatalog.Key, documentID: String) async throws -> Bool
    /// Applies one document version (a tombstone, or one part of a version sent in parts: held
    /// until the last arrives) and records `position` as consumed, in one
    /// transaction. Creates the collection with `defaults` (and the event's dimension) if needed.
    func apply(_ event: IndexedDocumentEvent, position: ConsumedPosition, defaults: SearchCollection.Configuration) async throws -> ApplyOutcome
    /// The collection's stored chunks, each with its row id as storage id; vectors only for rows
    /// after `vectorsAfter` (a snapshot holds the others).
    func chunks(_ key: SearchCatalog.Key, vectorsAfter: Int64) async throws -> [SearchCollection.Chunk]
    func appliedOffsets() async throws -> [ConsumedPosition]
}

struct ConsumedPosition: Sendable, Equatable, Codable {
    var topic: String
    var partition: Int
    /// The offset after the last applied message.
    var nextOffset: Int64
}

enum ApplyOutcome: Sendable, Equatable {
    /// The collection's configuration (possibly just created) and the chunks now stored.
    case replaced(SearchCollection.Configuration, [SearchCollection.Chunk])
    case deleted
    /// A replay (at or before the stored position), the same version again, or a tombstone for
    /// a document that is not there.
    case unchanged
    /// One part of a version sent in parts, held until the others arrive.
    case staged(part: Int, of: Int)
    case rejected(String)
}
