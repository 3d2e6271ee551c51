import ConduitKit
import Logging
import Postgres

/// Applies a migrator, waiting for Postgres to accept connections (it may still be starting
/// when a whole stack comes up together).
public func migrate(_ migrator: PostgresMigrator, on client: PostgresClient, logger: Logger, patience: Duration = .seconds(60)) async throws {
    let deadline = ContinuousClock.now + patience
    while true {
        do {
            try await migrator.migrate(client, logger: logger)
            return
        } catch let error as PostgresError where error.code == .connectionFailed && ContinuousClock.now < deadline {
            logger.warning("postgres not reachable yet; retrying migrations", metadata: [LogKey.error: "\(error)"])
            try await Task.sleep(for: .seconds(1))
        }
    }
}
