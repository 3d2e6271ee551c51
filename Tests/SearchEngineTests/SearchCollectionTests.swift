import ConduitProtocol
import Foundation
import SearchEngine
import Testing

struct SearchCollectionTests {
    /// Four chunks on the axes of a 4-d space, with texts and metadata chosen by hand.
    static func chunk(_ id: String, document: String, axis: Int, text: String, metadata: [String: JSONValue] = [:]) -> SearchCollection.Chunk {
        var vector = [Float](repeating: 0.05, count: 4)
        vector[axis] = 1
        return .init(id: id, documentID: document, text: text, start: 0, end: text.unicodeScalars.count, metadata: metadata, vector: vector)
    }

    func collection() throws -> SearchCollection {
        let collection = SearchCollection(configuration: .init(dimension: 4))
        try collection.replaceDocument("doc1", chunks: [
            Self.chunk("doc1#0", document: "doc1", axis: 0, text: "solar panels convert sunlight", metadata: ["year": .number(2020)]),
            Self.chunk("doc1#1", document: "doc1", axis: 1, text: "wind turbines and solar farms", metadata: ["year": .number(2022)]),
        ])
        try collection.replaceDocument("doc2", chunks: [
            Self.chunk("doc2#0", document: "doc2", axis: 2, text: "batteries store energy", metadata: ["year": .number(2023)]),
            Self.chunk("doc2#1", document: "doc2", axis: 3, text: "the grid balances supply", metadata: ["year": .number(2024)]),
        ])
        return collection
    }

    @Test func hybridFusesBothSignalsInTheWorkedOrder() throws {
        let collection = try collection()
        // Vector ranks: doc1#1 (axis 1) first, then the rest tied far behind; keyword "solar
        // farms": doc1#1 (both words) then doc1#0. RRF k = 60: doc1#1 = 1/61 + 1/61 beats
        // doc1#0 = 1/62 + 1/62. (With "solar" alone the two chunks tie exactly, and the order is
        // the tie-break's, not the fusion's.)
        let results = try collection.search(.init(vector: [0, 1, 0, 0], text: "solar farms", topK: 3, mode: .hybrid))
        #expect(results.first?.chunkID == "doc1#1")
        #expect(results[1].chunkID == "doc1#0")
        let first = try #require(results.first)
        #expect(first.ranks["vector"] == 1)
        #expect(first.scores["vector"] != nil && first.scores["keyword"] != nil)
        #expect(first.ranks["keyword"] == 1)
        #expect(abs(first.score - (1.0 / 61 + 1.0 / 61)) < 1e-12)
        #expect(first.text == "wind turbines and solar farms")
        #expect(first.metadata["year"] == .number(2022))
        // Weighting keyword 10× lets the keyword-only order lead.
        let weighted = try collection.search(.init(vector: [0, 0, 0, 1], text: "solar", topK: 2, weights: ["keyword": 10]))
        #expect(Set(weighted.map(\.chunkID)) == ["doc1#0", "doc1#1"])
    }

    @Test func singleSignalModesKeepTheirOwnScores() throws {
        let collection = try collection()
        let vector = try collection.search(.init(vector: [0, 0, 1, 0], topK: 1, mode: .vector))
        #expect(vector.map(\.chunkID) == ["doc2#0"])
        #expect(vector[0].score > 0.99)
        #expect(vector[0].scores.keys.sorted() == ["vector"])
        let keyword = try collection.search(.init(text: "batteries", topK: 5, mode: .keyword))
        #expect(keyword.map(\.chunkID) == ["doc2#0"])
        #expect(keyword[0].scores.keys.sorted() == ["keyword"])
    }

    @Test func filtersApplyToEverySignal() throws {
        let collection = try collection()
        let filter = try JSONDecoder().decode(MetadataFilter.self, from: Data(#"{"field":"year","gte":2023}"#.utf8))
        let results = try collection.search(.init(vector: [1, 0, 0, 0], text: "solar energy", topK: 4, filter: filter))
        #expect(Set(results.map(\.chunkID)) == ["doc2#0", "doc2#1"])
    }

    @Test func replacingADocumentSwapsAllItsChunksAtOnce() async throws {
        let collection = try collection()
        try collection.replaceDocument("doc1", chunks: [Self.chunk("doc1#0", document: "doc1", axis: 3, text: "tidal power")])
        #expect(collection.stats == .init(documents: 2, chunks: 3, indexBytes: collection.stats.indexBytes))
        #expect(try collection.search(.init(text: "solar", mode: .keyword)).isEmpty)
        #expect(try collection.search(.init(text: "tidal", mode: .keyword)).map(\.chunkID) == ["doc1#0"])
        // Readers during a stream of replacements see one version of doc3 at a time: all of
        // version A's four chunks or all of B's, never a mix or a partial set.
        let versions = ["alpha", "beta"]
        func version(_ name: String) -> [SearchCollection.Chunk] {
            (0..<4).map { Self.chunk("doc3#\($0)", document: "doc3", axis: $0, text: "\(name) part\($0)") }
        }
        try collection.replaceDocument("doc3", chunks: version("alpha"))
        let mixed = await withTaskGroup(of: Int.self) { group in
            group.addTask {
                for round in 0..<200 { try? collection.replaceDocument("doc3", chunks: version(versions[round % 2])) }
                return 0
            }
            group.addTask {
                var mixed = 0
                for _ in 0..<300 {
                    let hits = (try? collection.search(.init(text: "alpha beta", topK: 10, mode: .keyword))) ?? []
                    let names = Set(hits.map { $0.text.split(separator: " ")[0] })
                    if hits.count != 4 || names.count != 1 { mixed += 1 }
                }
                return mixed
            }
            var total = 0
            for await count in group { total += count }
            return total
        }
        #expect(mixed == 0)
        collection.removeDocument("doc3")
        #expect(collection.stats.chunks == 3)
    }

    @Test func badQueriesNameTheParameter() throws {
        let collection = try collection()
        #expect(throws: SearchCollection.QueryError.self) { try collection.search(.init(vector: [1, 0], topK: 3, mode: .vector)) }
        do {
            _ = try collection.search(.init(vector: [1, 0, 0], mode: .vector))
        } catch let error as SearchCollection.QueryError {
            #expect(error.parameter == "vector")
            #expect(error.message.contains("3 dimensions"))
        }
        #expect(throws: SearchCollection.QueryError(message: "top_k must be between 1 and 1000", parameter: "top_k")) {
            try collection.search(.init(text: "x", topK: 0, mode: .keyword))
        }
        #expect(throws: SearchCollection.QueryError.self) { try collection.search(.init(mode: .keyword)) }
        #expect(throws: SearchCollection.QueryError.self) {
            try collection.replaceDocument("bad", chunks: [.init(id: "bad#0", documentID: "bad", text: "x", start: 0, end: 1, metadata: [:], vector: [1])])
        }
    }

    @Test func tenantsNeverSeeEachOthersChunks() throws {
        let catalog = SearchCatalog()
        let configuration = SearchCollection.Configuration(dimension: 4)
        let acme = catalog.collection(.init(tenant: "acme", collection: "docs"), orCreate: configuration)
        let globex = catalog.collection(.init(tenant: "globex", collection: "docs"), orCreate: configuration)
        try acme.replaceDocument("shared-id", chunks: [Self.chunk("shared-id#0", document: "shared-id", axis: 0, text: "acme secret plans", metadata: ["owner": .string("acme")])])
        try globex.replaceDocument("shared-id", chunks: [Self.chunk("shared-id#0", document: "shared-id", axis: 0, text: "globex secret plans", metadata: ["owner": .string("globex")])])
        // A filter naming the other tenant's metadata finds nothing rather than their chunk.
        let crossFilter = MetadataFilter.equals("owner", .string("globex"))
        let found = try catalog.collection(.init(tenant: "acme", collection: "docs"))!
            .search(.init(vector: [1, 0, 0, 0], text: "secret plans", topK: 10, filter: crossFilter))
        #expect(found.isEmpty)
        let own = try acme.search(.init(vector: [1, 0, 0, 0], text: "secret plans", topK: 10))
        #expect(own.map(\.text) == ["acme secret plans"])
        #expect(catalog.keys(tenant: "acme") == [.init(tenant: "acme", collection: "docs")])
        #expect(catalog.collection(.init(tenant: "initech", collection: "docs")) == nil)
        // The same collection object comes back; creation happens once.
        #expect(catalog.collection(.init(tenant: "acme", collection: "docs"), orCreate: .init(dimension: 8)) === acme)
    }
}

struct SearchCollectionSnapshotTests {
    static func chunk(_ id: String, document: String, axis: Int, text: String, storageID: Int64) -> SearchCollection.Chunk {
        var chunk = SearchCollectionTests.chunk(id, document: document, axis: axis, text: text)
        chunk.storageID = storageID
        return chunk
    }

    @Test func restoreReusesTheSnapshotForStoredChunksAndIndexesOnlyNewOnes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("collection-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = SearchCollection.Configuration(dimension: 4)
        let original = SearchCollection(configuration: configuration)
        try original.replaceDocument("a", chunks: [Self.chunk("a#0", document: "a", axis: 0, text: "apples", storageID: 1),
                                                   Self.chunk("a#1", document: "a", axis: 1, text: "apricots", storageID: 2)])
        try original.replaceDocument("b", chunks: [Self.chunk("b#0", document: "b", axis: 2, text: "bananas", storageID: 3)])
        #expect(try original.writeSnapshot(to: directory) == original.changes)
        let snapshot = try SearchCollection.readSnapshot(from: directory)
        #expect(snapshot.maxStorageID == 3)

        // Since the snapshot: "b" was deleted, "c" was added. Stored rows: a's (without vectors:
        // the snapshot has them) and c's (with).
        var rows = [Self.chunk("a#0", document: "a", axis: 0, text: "apples", storageID: 1),
                    Self.chunk("a#1", document: "a", axis: 1, text: "apricots", storageID: 2)]
        rows = rows.map { var row = $0; row.vector = []; return row }
        rows.append(Self.chunk("c#0", document: "c", axis: 3, text: "cherries", storageID: 4))
        let restored = try SearchCollection.restore(configuration: configuration, snapshot: snapshot, chunks: rows)
        #expect(restored.stats.documents == 2)
        #expect(restored.stats.chunks == 3)
        #expect(try restored.search(.init(vector: [0, 1, 0, 0], topK: 1, mode: .vector)).map(\.chunkID) == ["a#1"])
        #expect(try restored.search(.init(vector: [0, 0, 0, 1], topK: 1, mode: .vector)).map(\.chunkID) == ["c#0"])
        // The deleted document's vector is gone from the graph, its text from the keywords.
        #expect(try restored.search(.init(vector: [0, 0, 1, 0], topK: 3, mode: .vector)).allSatisfy { $0.documentID != "b" })
        #expect(try restored.search(.init(text: "bananas", mode: .keyword)).isEmpty)
        // A row the snapshot does not hold must bring its vector.
        #expect(throws: SearchCollection.QueryError.self) {
            try SearchCollection.restore(configuration: configuration, snapshot: snapshot,
                                         chunks: [Self.chunk("d#0", document: "d", axis: 0, text: "dates", storageID: 9)].map { var row = $0; row.vector = []; return row })
        }
    }

    @Test func aDamagedLabelMapIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("collection-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let collection = SearchCollection(configuration: .init(dimension: 4))
        try collection.replaceDocument("a", chunks: [Self.chunk("a#0", document: "a", axis: 0, text: "apples", storageID: 1)])
        try collection.writeSnapshot(to: directory)
        let labels = directory.appendingPathComponent("labels.bin")
        var bytes = try Data(contentsOf: labels)
        bytes[20] ^= 1
        try bytes.write(to: labels)
        #expect(throws: VectorIndex.SnapshotError.self) { try SearchCollection.readSnapshot(from: directory) }
    }
}
