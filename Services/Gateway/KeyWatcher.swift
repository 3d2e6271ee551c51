import ConduitKit
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// Keeps the authenticator current with the keys in Postgres: loads every hash that may
/// authenticate at start, then every `interval` reads the keys changed since the last poll
/// (revoked, rotated, updated, created) and drops their cached lookups. Each poll looks back a
/// few seconds past the last one, so that a change committed a moment after the clock reading it
/// carries is not missed.
struct KeyWatcher: Service {
    let changes: any KeyChanges
    let authenticator: APIKeyAuthenticator
    var interval: Duration = .milliseconds(500)
    var overlap: TimeInterval = 5
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    func run() async throws {
        let failures = registry.makeCounter(descriptor: .init(
            namespace: "gateway", subsystem: "api_keys", metricName: "watch_errors", unitName: "total",
            helpText: "Polls of the key changes that failed (cached keys then live out their cache lifetime)."))
        var since: Date?
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                if let last = since {
                    let (changed, now) = try await changes.changes(since: last.addingTimeInterval(-overlap))
                    authenticator.apply(changed)
                    since = now
                } else {
                    let (_, now) = try await changes.changes(since: .distantFuture)
                    authenticator.load(try await changes.activeHashes())
                    since = now
                    logger.debug("api keys loaded")
                }
            } catch {
                failures.increment()
                // Until a load succeeds, keys are looked up one by one.
                logger.warning("api key changes could not be read", metadata: [LogKey.error: "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
