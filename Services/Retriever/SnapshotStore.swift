import ConduitKit
import Foundation
import Logging
import SearchEngine
import ServiceLifecycle
import Synchronization

/// Writes each changed collection's snapshot in the background (every `interval`, and once more
/// at shutdown) and finds the newest one at start.
///
/// Layout: `<directory>/<hex tenant>/<hex collection>/current/` (`vectors.snap`, `labels.bin`).
/// A new snapshot is written to `next/`, then `current/` becomes `previous/` and `next/`
/// becomes `current/`; loading tries `current/`, then `previous/`.
final class SnapshotStore: Service, Sendable {
    let directory: URL
    let interval: Duration
    let catalog: SearchCatalog
    let logger: Logger
    private struct Written {
        var changes: Int
        var at: Date
    }
    private let written = Mutex<[SearchCatalog.Key: Written]>([:])

    init(directory: URL, interval: Duration, catalog: SearchCatalog, logger: Logger) {
        self.directory = directory
        self.interval = interval
        self.catalog = catalog
        self.logger = logger
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.interval)
                    await self.writeChanged()
                }
            }
        } catch is CancellationError {}
        // Shutdown: one last round, so a restart finds everything in snapshots.
        await writeChanged()
    }

    /// Snapshots every collection that changed since its last snapshot, on a thread of its own
    /// (file writes block).
    func writeChanged() async {
        let keys = catalog.allKeys()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                for key in keys { write(key) }
                continuation.resume()
            }
            thread.name = "conduit-snapshots"
            thread.start()
        }
    }

    private func write(_ key: SearchCatalog.Key) {
        guard let collection = catalog.collection(key) else { return }
        let changes = collection.changes
        if written.withLock({ $0[key]?.changes }) == changes { return }
        let base = folder(for: key)
        let next = base.appendingPathComponent("next")
        let current = base.appendingPathComponent("current")
        let previous = base.appendingPathComponent("previous")
        let files = FileManager.default
        do {
            try? files.removeItem(at: next)
            let captured = try collection.writeSnapshot(to: next)
            try? files.removeItem(at: previous)
            if files.fileExists(atPath: current.path) { try files.moveItem(at: current, to: previous) }
            try files.moveItem(at: next, to: current)
            try? files.removeItem(at: previous)
            written.withLock { $0[key] = Written(changes: captured, at: Date()) }
            logger.debug("snapshot written", metadata: ["collection": "\(key.collection)"])
        } catch {
            logger.warning("snapshot failed", metadata: ["collection": "\(key.collection)", LogKey.error: "\(error)"])
        }
    }

    /// The newest readable snapshot of `key`, if any; a damaged one is reported and skipped.
    func load(_ key: SearchCatalog.Key) -> SearchCollection.Snapshot? {
        for name in ["current", "previous"] {
            let folder = folder(for: key).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("vectors.snap").path) else { continue }
            do {
                let snapshot = try SearchCollection.readSnapshot(from: folder)
                let modified = (try? FileManager.default.attributesOfItem(atPath: folder.path)[.modificationDate] as? Date) ?? Date()
                written.withLock { $0[key] = Written(changes: -1, at: modified) }
                return snapshot
            } catch {
                logger.warning("snapshot unreadable; rebuilding from Postgres", metadata: ["collection": "\(key.collection)", LogKey.error: "\(error)"])
            }
        }
        return nil
    }

    /// Seconds since the last snapshot of `key` was written (or found at start).
    func age(of key: SearchCatalog.Key) -> Double? {
        written.withLock { $0[key] }.map { Date().timeIntervalSince($0.at) }
    }

    func remove(_ key: SearchCatalog.Key) {
        written.withLock { $0[key] = nil }
        try? FileManager.default.removeItem(at: folder(for: key))
    }

    private func folder(for key: SearchCatalog.Key) -> URL {
        func hex(_ text: String) -> String { text.utf8.map { String(format: "%02x", $0) }.joined() }
        return directory.appendingPathComponent(hex(key.tenant)).appendingPathComponent(hex(key.collection))
    }
}
