import Logging

/// One versioned schema change. Versions are applied in ascending order, each exactly once.
public struct PostgresMigration: Sendable {
    public var version: Int
    public var name: String
    /// Statements run with `search_path` set to the owning schema.
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies a service's migrations to its own schema. Replicas starting together serialize on a
/// transaction-scoped advisory lock, so each migration runs once however many start at once.
public struct PostgresMigrator: Sendable {
    public let schema: String
    public let migrations: [PostgresMigration]

    public init(schema: String, migrations: [PostgresMigration]) {
        precondition(
            schema.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLowercase || $0.isNumber)) } && !schema.isEmpty,
            "schema names are lower-case identifiers"
        )
        precondition(Set(migrations.map(\.version)).count == migrations.count, "migration versions are unique")
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is missing and returns the versions this call applied.
    @discardableResult
    public func migrate(_ client: PostgresClient, logger: Logger) async throws -> [Int] {
        let schema = self.schema
        let migrations = self.migrations
        let applied = try await client.withTransaction { session -> [Int] in
            try await session.query("SELECT pg_advisory_xact_lock(hashtext($1))", "conduit.migrations.\(schema)")
            try await session.execute(script: """
                CREATE SCHEMA IF NOT EXISTS \(schema);
                CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                );
                SET LOCAL search_path TO \(schema), public;
                """)
            let done = Set(try await session.query("SELECT version FROM schema_migrations").map { try $0.decode(Int.self, at: 0) })
            var applied: [Int] = []
            for migration in migrations where !done.contains(migration.version) {
                do {
                    try await session.execute(script: migration.sql)
                } catch let error as PostgresError {
                    throw PostgresError(.migrationFailed, sqlState: error.sqlState, serverMessage: "\(schema) v\(migration.version): \(error.serverMessage ?? "")")
                }
                try await session.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", migration.version, migration.name)
                applied.append(migration.version)
            }
            return applied
        }
        if !applied.isEmpty {
            logger.info("applied migrations", metadata: ["schema": "\(schema)", "versions": "\(applied)"])
        }
        return applied
    }
}
