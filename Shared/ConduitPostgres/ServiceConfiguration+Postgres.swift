import ConduitKit
import Postgres

extension ServiceConfiguration {
    /// | variable | default |
    /// |---|---|
    /// | `CONDUIT_POSTGRES_HOST` / `_PORT` / `_USER` / `_PASSWORD` / `_DATABASE` / `_POOL_SIZE` | `127.0.0.1` / `55432` / `conduit` / none / `conduit` / 8 |
    /// | `CONDUIT_POSTGRES_STATEMENT_TIMEOUT_MS` | 30000 (server-side limit per statement; TCP keep-alive probes after 30 s idle) |
    public var postgres: PostgresConfiguration {
        get throws {
            var postgres = PostgresConfiguration(
                host: environment.string("CONDUIT_POSTGRES_HOST", default: "127.0.0.1"),
                port: try environment.int("CONDUIT_POSTGRES_PORT", default: 55432),
                user: environment.string("CONDUIT_POSTGRES_USER", default: "conduit"),
                password: environment.optionalString("CONDUIT_POSTGRES_PASSWORD"),
                database: environment.string("CONDUIT_POSTGRES_DATABASE", default: "conduit"),
                maxConnections: try environment.int("CONDUIT_POSTGRES_POOL_SIZE", default: 8),
                applicationName: service.rawValue
            )
            postgres.statementTimeoutMilliseconds = try environment.int("CONDUIT_POSTGRES_STATEMENT_TIMEOUT_MS", default: 30_000)
            return postgres
        }
    }
}
