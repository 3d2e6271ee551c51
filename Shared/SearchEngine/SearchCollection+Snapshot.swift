import Foundation

/// A collection's snapshot: the vector graph (``VectorIndex`` snapshot, `vectors.snap`) and which
/// stored chunk each label holds (`labels.bin`). Texts and metadata are not in it — they are
/// small next to the vectors and come back from the durable store with the chunk rows; the
/// graph is what is slow to rebuild.
extension SearchCollection {
    public struct Snapshot {
        public let vectors: VectorIndex
        /// label → storage id of the chunk it held.
        public let storageIDs: [UInt32: Int64]
        /// Chunks with a larger storage id were stored after the snapshot.
        public var maxStorageID: Int64 { storageIDs.values.max() ?? 0 }
    }

    static let labelsMagic: UInt64 = 0x3153_4C42_414C_4443  // "CDLABLS1" read as little-endian

    /// Writes the snapshot into `directory` (created if needed). Updates wait meanwhile;
    /// searches go on. Returns the change count the snapshot reflects.
    @discardableResult
    public func writeSnapshot(to directory: URL) throws -> Int {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try reading {
            var words: [UInt64] = [Self.labelsMagic, 0]
            for (label, record) in records.enumerated() {
                guard let record else { continue }
                words.append(UInt64(label))
                words.append(UInt64(bitPattern: record.storageID))
            }
            words[1] = UInt64(words.count / 2 - 1)
            var checksum: UInt64 = 0xCBF2_9CE4_8422_2325
            for word in words { checksum = (checksum ^ word) &* 0x100_0000_01B3 }
            words.append(checksum)
            let data = words.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: directory.appendingPathComponent("labels.bin"), options: .atomic)
            try vectors.write(to: directory.appendingPathComponent("vectors.snap"))
            return changeCount
        }
    }

    /// Reads a snapshot written by ``writeSnapshot(to:)``; throws if either file is damaged.
    public static func readSnapshot(from directory: URL) throws -> Snapshot {
        let data = try Data(contentsOf: directory.appendingPathComponent("labels.bin"))
        let words = data.withUnsafeBytes { raw in (0..<(raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
        let damaged = VectorIndex.SnapshotError(code: .checksumMismatch, detail: "labels.bin")
        guard data.count % 8 == 0, words.count >= 3, words[0] == labelsMagic, Int(words[1]) * 2 + 3 == words.count else { throw damaged }
        var checksum: UInt64 = 0xCBF2_9CE4_8422_2325
        for word in words.dropLast() { checksum = (checksum ^ word) &* 0x100_0000_01B3 }
        guard checksum == words.last else { throw damaged }
        var storageIDs: [UInt32: Int64] = [:]
        for pair in 0..<Int(words[1]) {
            storageIDs[UInt32(truncatingIfNeeded: words[2 + pair * 2])] = Int64(bitPattern: words[3 + pair * 2])
        }
        return Snapshot(vectors: try VectorIndex.load(from: directory.appendingPathComponent("vectors.snap")), storageIDs: storageIDs)
    }

    /// A collection from the durable store's chunks, reusing `snapshot`'s graph for every chunk
    /// it already holds (same storage id). Chunks it does not hold need their vector; labels it
    /// holds for chunks no longer stored are deleted. Without a usable snapshot, every chunk is
    /// indexed afresh.
    public static func restore(configuration: Configuration, snapshot: Snapshot?, chunks: [Chunk]) throws -> SearchCollection {
        let collection = SearchCollection(configuration: configuration, capacity: max(chunks.count, 64))
        var labelOfStorage: [Int64: UInt32] = [:]
        if let snapshot, snapshot.vectors.dimension == configuration.dimension, snapshot.vectors.parameters == configuration.vector {
            collection.vectors = snapshot.vectors
            for (label, storageID) in snapshot.storageIDs where storageID != 0 { labelOfStorage[storageID] = label }
        }
        var fresh: [Chunk] = []
        try collection.writing {
            var used = Set<UInt32>()
            for chunk in chunks {
                guard chunk.storageID != 0, let label = labelOfStorage[chunk.storageID], collection.vectors.contains(label: label) else {
                    fresh.append(chunk)
                    continue
                }
                while collection.records.count <= Int(label) { collection.records.append(nil) }
                collection.records[Int(label)] = Record(id: chunk.id, documentID: chunk.documentID, text: chunk.text, start: chunk.start,
                                                        end: chunk.end, metadata: chunk.metadata, storageID: chunk.storageID)
                collection.labelOfChunk[chunk.id] = label
                collection.chunksOfDocument[chunk.documentID, default: []].append(label)
                collection.keywords.upsert(label: label, text: chunk.text)
                used.insert(label)
            }
            for label in Set(labelOfStorage.values).subtracting(used) { collection.vectors.remove(label: label) }
            // Labels of the snapshot's graph stay reserved until reused by new chunks.
            collection.freeLabels = collection.records.indices.reversed().filter { collection.records[$0] == nil }.map { UInt32($0) }
            if let wrong = fresh.first(where: { $0.vector.count != configuration.dimension }) {
                throw QueryError(message: "chunk \(wrong.id) is not in the snapshot and has no \(configuration.dimension)-dimensional vector", parameter: "vector")
            }
        }
        var byDocument: [String: [Chunk]] = [:]
        for chunk in fresh { byDocument[chunk.documentID, default: []].append(chunk) }
        for (documentID, chunks) in byDocument {
            // Documents split between the snapshot and fresh rows are whole again after this.
            let kept = collection.reading { collection.chunksOfDocument[documentID] ?? [] }
            if kept.isEmpty {
                try collection.replaceDocument(documentID, chunks: chunks)
            } else {
                try collection.add(chunks, to: documentID)
            }
        }
        return collection
    }

    /// Adds chunks to a document without removing its others (restoring only).
    private func add(_ chunks: [Chunk], to documentID: String) throws {
        writing {
            for chunk in chunks { chunksOfDocument[documentID, default: []].append(insertLocked(chunk, documentID: documentID)) }
        }
    }
}
