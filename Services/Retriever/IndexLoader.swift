import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Hummingbird
import Kafka
import Logging
import Postgres
import Prometheus
import SearchEngine
import ServiceLifecycle

/// Rebuilds every collection's indexes at start: the newest snapshot's graph for the chunks it
/// holds, plus the rows stored after it (their vectors read from Postgres).
struct IndexLoader {
    let repository: any ChunkRepository
    let catalog: SearchCatalog
    let snapshots: SnapshotStore?
    /// Graph rebuilds run here, off the cooperative pool (the service's executor: a pool made
    /// here would never be shut down).
    let engine: EngineExecutor
    let logger: Logger

    func load() async throws {
        let start = ContinuousClock.now
        var total = 0
        var fromSnapshots = 0
        for (key, configuration) in try await repository.collections() {
            let snapshot = snapshots?.load(key)
            let chunks = try await repository.chunks(key, vectorsAfter: snapshot?.maxStorageID ?? 0)
            let restored: SearchCollection
            let hadSnapshot = snapshot != nil
            let handover = SnapshotHandover(snapshot: snapshot)
            do {
                restored = try await engine.run { try SearchCollection.restore(configuration: configuration, snapshot: handover.snapshot, chunks: chunks) }
            } catch {
                // The snapshot does not fit the rows (say, written by another database): rebuild.
                logger.warning("snapshot does not match the stored chunks; rebuilding", metadata: ["collection": "\(key.collection)", LogKey.error: "\(error)"])
                let all = try await repository.chunks(key, vectorsAfter: 0)
                restored = try await engine.run { try SearchCollection.restore(configuration: configuration, snapshot: nil, chunks: all) }
            }
            catalog.insert(restored, for: key)
            total += chunks.count
            if hadSnapshot { fromSnapshots += 1 }
        }
        logger.info("indexes loaded", metadata: ["chunks": "\(total)", "snapshots": "\(fromSnapshots)", "seconds": "\(ContinuousClock.now - start)"])
    }
}

/// Moves a loaded snapshot (its mapped file is not `Sendable`) into the one engine job that
/// restores it. `@unchecked` is safe: the loader makes the snapshot, hands it over here and
/// never touches it again, so only the engine thread ever uses it.
private struct SnapshotHandover: @unchecked Sendable {
    let snapshot: SearchCollection.Snapshot?
}
