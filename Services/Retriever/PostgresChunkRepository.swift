import ConduitProtocol
import Foundation
import Postgres
import SearchEngine

struct PostgresChunkRepository: ChunkRepository {
    let postgres: PostgresClient

    func collections() async throws -> [(SearchCatalog.Key, SearchCollection.Configuration)] {
        try await postgres.query("SELECT tenant_id, name, configuration FROM retriever.collections").map { row in
            (SearchCatalog.Key(tenant: try row.decode(at: 0), collection: try row.decode(at: 1)),
             try row.decode(PostgresJSON.self, at: 2).decode(SearchCollection.Configuration.self))
        }
    }

    func createCollection(_ key: SearchCatalog.Key, configuration: SearchCollection.Configuration) async throws -> Bool {
        let rows = try await postgres.query(
            "INSERT INTO retriever.collections (tenant_id, name, configuration) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING RETURNING 1",
            key.tenant, key.collection, try PostgresJSON(encoding: configuration))
        return !rows.isEmpty
    }

    func deleteCollection(_ key: SearchCatalog.Key) async throws -> Bool {
        !(try await postgres.query("DELETE FROM retriever.collections WHERE tenant_id = $1 AND name = $2 RETURNING 1",
                                   key.tenant, key.collection)).isEmpty
    }

    /// Keeps the document row as a tombstone, so a replay of an older event cannot revive it.
    func deleteDocument(_ key: SearchCatalog.Key, documentID: String) async throws -> Bool {
        try await postgres.withTransaction { session in
            let marked = try await session.query(
                "UPDATE retriever.documents SET deleted = true, updated_at = now() WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3 AND NOT deleted RETURNING 1",
                key.tenant, key.collection, documentID)
            try await session.query("DELETE FROM retriever.chunks WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3",
                                    key.tenant, key.collection, documentID)
            return !marked.isEmpty
        }
    }

    func apply(_ event: IndexedDocumentEvent, position: ConsumedPosition, defaults: SearchCollection.Configuration) async throws -> ApplyOutcome {
        try await postgres.withTransaction { session in
            let outcome = try await apply(event, position: position, defaults: defaults, on: session)
            try await session.query("""
                INSERT INTO retriever.applied_offsets (topic, partition, next_offset) VALUES ($1, $2, $3)
                ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = now()
                """, position.topic, position.partition, position.nextOffset)
            return outcome
        }
    }

    private func apply(_ event: IndexedDocumentEvent, position: ConsumedPosition, defaults: SearchCollection.Configuration,
                       on session: PostgresSession) async throws -> ApplyOutcome {
        let tenant = event.tenant
        let collection = event.collection
        let offset = position.nextOffset - 1
        let current = try await session.query("""
            SELECT version, deleted, source_topic, source_partition, source_offset FROM retriever.documents
            WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3 FOR UPDATE
            """, tenant, collection, event.docID).first
        if let current {
            // One key, one partition: a position at or before the stored one is a replay.
            let topic: String? = try current.decode(at: 2)
            let partition: Int? = try current.decode(at: 3)
            let stored: Int64? = try current.decode(at: 4)
            if topic == position.topic, partition == position.partition, let stored, stored >= offset { return .unchanged }
        }
        var event = event
        if event.parts > 1 {
            if let current, try current.decode(String.self, at: 0) == event.version, try !current.decode(Bool.self, at: 1) {
                return .unchanged
            }
            switch try await stage(event, on: session) {
            case .complete(let whole): event = whole
            case .waiting: return .staged(part: event.part, of: event.parts)
            case .rejected(let reason): return .rejected(reason)
            }
        } else {
            // A version sent whole (or a tombstone) supersedes any parts still waiting.
            try await session.query("DELETE FROM retriever.pending_parts WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3",
                                    tenant, collection, event.docID)
        }
        let recordPosition = """
            UPDATE retriever.documents SET source_topic = $4, source_partition = $5, source_offset = $6, updated_at = now()
            WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3
            """
        if event.op == .delete {
            guard let current, try !current.decode(Bool.self, at: 1) else {
                if current != nil {
                    try await session.query(recordPosition, tenant, collection, event.docID, position.topic, position.partition, offset)
                }
                return .unchanged
            }
            try await session.query("DELETE FROM retriever.chunks WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3",
                                    tenant, collection, event.docID)
            try await session.query("UPDATE retriever.documents SET deleted = true, version = $4 WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3",
                                    tenant, collection, event.docID, event.version)
            try await session.query(recordPosition, tenant, collection, event.docID, position.topic, position.partition, offset)
            return .deleted
        }
        var configuration = defaults
        configuration.dimension = event.chunks.first?.embedding.count ?? defaults.dimension
        try await session.query(
            "INSERT INTO retriever.collections (tenant_id, name, configuration) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING",
            tenant, collection, try PostgresJSON(encoding: configuration))
        let stored = try await session.query(
            "SELECT configuration FROM retriever.collections WHERE tenant_id = $1 AND name = $2 FOR SHARE", tenant, collection)
        configuration = try stored[0].decode(PostgresJSON.self, at: 0).decode(SearchCollection.Configuration.self)
        if let wrong = event.chunks.first(where: { $0.embedding.count != configuration.dimension }) {
            return .rejected("chunk \(wrong.id) has a \(wrong.embedding.count)-dimensional vector; collection '\(collection)' has \(configuration.dimension)")
        }
        if let current, try current.decode(String.self, at: 0) == event.version, try !current.decode(Bool.self, at: 1) {
            try await session.query(recordPosition, tenant, collection, event.docID, position.topic, position.partition, offset)
            return .unchanged
        }
        try await session.query("""
            INSERT INTO retriever.documents (tenant_id, collection, doc_id, version) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, collection, doc_id) DO UPDATE SET version = excluded.version, deleted = false
            """, tenant, collection, event.docID, event.version)
        try await session.query(recordPosition, tenant, collection, event.docID, position.topic, position.partition, offset)
        try await session.query("DELETE FROM retriever.chunks WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3",
                                tenant, collection, event.docID)
        let metadata = MetadataConversion.chunkMetadata(document: event.metadata, source: event.source)
        var chunks = event.chunks.map { chunk in
            var own = metadata
            if let heading = chunk.heading { own["heading"] = .string(heading) }
            return SearchCollection.Chunk(id: chunk.id, documentID: event.docID, text: chunk.text, start: chunk.start,
                                          end: chunk.end, metadata: own, vector: chunk.embedding)
        }
        // Rows in batches of 200 keep each statement well under the 65,535-parameter limit.
        for (batchStart, batch) in stride(from: 0, to: chunks.count, by: 200).map({ ($0, Array(chunks[$0..<min($0 + 200, chunks.count)])) }) {
            var binds: [any PostgresEncodable] = []
            var rows: [String] = []
            for (offset, chunk) in batch.enumerated() {
                let source = event.chunks[batchStart + offset]
                let base = binds.count
                rows.append("(" + (1...11).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
                binds += [tenant, collection, event.docID, chunk.id, source.index, chunk.text, chunk.start, chunk.end,
                          try PostgresJSON(encoding: chunk.metadata), Data(Float32Coding.bytes(chunk.vector)), source.contentHash]
            }
            let inserted = try await session.query("""
                INSERT INTO retriever.chunks (tenant_id, collection, doc_id, chunk_id, chunk_index, text, start_offset,
                    end_offset, metadata, vector, content_hash) VALUES \(rows.joined(separator: ", ")) RETURNING chunk_id, row_id
                """, binds: binds)
            let rowIDs = try Dictionary(uniqueKeysWithValues: inserted.map { (try $0.decode(String.self, at: 0), try $0.decode(Int64.self, at: 1)) })
            for index in batchStart..<(batchStart + batch.count) { chunks[index].storageID = rowIDs[chunks[index].id] ?? 0 }
        }
        return .replaced(configuration, chunks)
    }

    enum Staging {
        case waiting
        /// Every part arrived: the version as one event.
        case complete(IndexedDocumentEvent)
        case rejected(String)
    }

    /// How long the parts of a version that never completes are kept.
    static let pendingPartsLifetime = "1 day"

    /// Holds one part of `event`'s version; when it was the last one missing, takes all of them
    /// out and joins them. Parts of other versions of the document are dropped (a newer version
    /// replaced them), and so are parts anywhere that waited longer than `pendingPartsLifetime`.
    private func stage(_ event: IndexedDocumentEvent, on session: PostgresSession) async throws -> Staging {
        let (tenant, collection, docID) = (event.tenant, event.collection, event.docID)
        try await session.query("DELETE FROM retriever.pending_parts WHERE received_at < now() - interval '\(Self.pendingPartsLifetime)'")
        try await session.query(
            "DELETE FROM retriever.pending_parts WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3 AND (version <> $4 OR parts <> $5)",
            tenant, collection, docID, event.version, event.parts)
        try await session.query("""
            INSERT INTO retriever.pending_parts (tenant_id, collection, doc_id, version, part, parts, event) VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT DO NOTHING
            """, tenant, collection, docID, event.version, event.part, event.parts, try EventCoding.encoder().encode(event))
        let held = try await session.query(
            "SELECT count(*) FROM retriever.pending_parts WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3 AND version = $4",
            tenant, collection, docID, event.version)
        guard try held[0].decode(Int64.self, at: 0) == event.parts else { return .waiting }
        let rows = try await session.query("""
            DELETE FROM retriever.pending_parts WHERE tenant_id = $1 AND collection = $2 AND doc_id = $3 AND version = $4 RETURNING part, event
            """, tenant, collection, docID, event.version)
        let decoder = EventCoding.decoder()
        let parts = try rows.map { (try $0.decode(Int.self, at: 0), try decoder.decode(IndexedDocumentEvent.self, from: try $0.decode(Data.self, at: 1))) }
            .sorted { $0.0 < $1.0 }
        var whole = event
        whole.part = 0
        whole.parts = 1
        whole.chunks = parts.flatMap { $0.1.chunks }
        if Set(whole.chunks.map(\.id)).count != whole.chunks.count {
            return .rejected("chunk ids repeat across the \(event.parts) parts of version \(event.version)")
        }
        return .complete(whole)
    }

    func chunks(_ key: SearchCatalog.Key, vectorsAfter: Int64) async throws -> [SearchCollection.Chunk] {
        let rows = try await postgres.query("""
            SELECT row_id, doc_id, chunk_id, text, start_offset, end_offset, metadata, CASE WHEN row_id > $3 THEN vector END
            FROM retriever.chunks WHERE tenant_id = $1 AND collection = $2 ORDER BY doc_id, chunk_index
            """, key.tenant, key.collection, vectorsAfter)
        return try rows.map { row in
            SearchCollection.Chunk(
                id: try row.decode(at: 2), documentID: try row.decode(at: 1), text: try row.decode(at: 3), start: try row.decode(at: 4),
                end: try row.decode(at: 5), metadata: try row.decode(PostgresJSON.self, at: 6).decode([String: JSONValue].self),
                vector: try row.decode(Data?.self, at: 7).flatMap(Float32Coding.floats) ?? [], storageID: try row.decode(at: 0))
        }
    }

    func appliedOffsets() async throws -> [ConsumedPosition] {
        try await postgres.query("SELECT topic, partition, next_offset FROM retriever.applied_offsets ORDER BY topic, partition").map { row in
            ConsumedPosition(topic: try row.decode(at: 0), partition: try row.decode(at: 1), nextOffset: try row.decode(at: 2))
        }
    }
}
