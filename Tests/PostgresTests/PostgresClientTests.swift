import Foundation
import Logging
import Postgres
import Testing
import TestSupport

/// Against the test stack's Postgres (deploy/dev/stack.sh test).
@Suite(.timeLimit(.minutes(2)))
struct PostgresClientTests {
    static func makeClient(port: Int = TestEnvironment.postgresPort, maxConnections: Int = 4) -> PostgresClient {
        PostgresClient(
            configuration: .init(port: port, maxConnections: maxConnections, applicationName: TestEnvironment.uniqueName("pgtest")),
            logger: Logger(label: "test")
        )
    }

    @Test func everySupportedTypeRoundTrips() async throws {
        let client = Self.makeClient()
        defer { client.shutdown() }
        let bytes = Data((0...255).map(UInt8.init))
        let uuid = UUID()
        let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let text = "héllo 'quoted' \"double\" \\ back — 日本語 🚀"
        let rows = try await client.query(
            """
            SELECT $1::bool, $2::int2, $3::int4, $4::int8, $5::float8, $6::float4, $7::text,
                   $8::bytea, $9::uuid, $10::timestamptz, $11::float4[], $12::int8[], $13::jsonb, $14::text, $15::int8
            """,
            true, Int16(-32768), Int32(2_147_483_647), Int64.min, 3.141592653589793, Float(1.5), text,
            bytes, uuid, date, [Float(0.25), -1.5, 3], [1, 2, 3], PostgresJSON(#"{"a": [1, 2]}"#), String?.none, Int?.none
        )
        let row = try #require(rows.first)
        #expect(try row.decode(Bool.self, at: 0) == true)
        #expect(try row.decode(Int16.self, at: 1) == -32768)
        #expect(try row.decode(Int32.self, at: 2) == 2_147_483_647)
        #expect(try row.decode(Int64.self, at: 3) == Int64.min)
        #expect(try row.decode(Double.self, at: 4) == 3.141592653589793)
        #expect(try row.decode(Float.self, at: 5) == 1.5)
        #expect(try row.decode(String.self, at: 6) == text)
        #expect(try row.decode(Data.self, at: 7) == bytes)
        #expect(try row.decode(UUID.self, at: 8) == uuid)
        #expect(abs(try row.decode(Date.self, at: 9).timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_001)
        #expect(try row.decode([Float].self, at: 10) == [0.25, -1.5, 3])
        #expect(try row.decode([Int].self, at: 11) == [1, 2, 3])
        #expect(try row.decode(PostgresJSON.self, at: 12).decode([String: [Int]].self) == ["a": [1, 2]])
        #expect(try row.decode(String?.self, at: 13) == nil)
        #expect(try row.decode(Int?.self, at: 14) == nil)
        #expect(throws: PostgresError.self) { try row.decode(Int.self, at: 14) }
        #expect(throws: PostgresError.self) { try row.decode(Int.self, at: 6) }
    }

    @Test func decodesColumnsByName() async throws {
        let client = Self.makeClient()
        defer { client.shutdown() }
        let rows = try await client.query("SELECT 7 AS seven, 'x' AS letter")
        #expect(try rows[0].decode(Int.self, column: "seven") == 7)
        #expect(try rows[0].decode(String.self, column: "letter") == "x")
        #expect(rows.columns == ["seven", "letter"])
    }

    @Test func sqlErrorCarriesSQLStateButNoSQLText() async throws {
        let client = Self.makeClient()
        defer { client.shutdown() }
        let secret = "table_named_like_a_secret_\(UUID().uuidString.prefix(6))"
        let error = try await #require(throws: PostgresError.self) {
            try await client.query("SELECT * FROM \(secret) WHERE password = $1", "hunter2")
        }
        #expect(error.code == .queryFailed)
        #expect(error.sqlState == "42P01")
        #expect(!error.description.contains(secret))
        #expect(!error.description.contains("hunter2"))
        #expect(!error.description.contains("SELECT"))
        // The connection is still usable after a statement error.
        #expect(try await client.query("SELECT 1")[0].decode(Int.self, at: 0) == 1)
    }

    @Test func transactionRollsBackOnErrorAndCommitsOtherwise() async throws {
        let client = Self.makeClient()
        defer { client.shutdown() }
        let table = TestEnvironment.uniqueName("tx")
        try await client.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await client.withTransaction { session in
                try await session.query("INSERT INTO \(table) VALUES (1)")
                throw Boom()
            }
        }
        #expect(try await client.query("SELECT count(*) FROM \(table)")[0].decode(Int.self, at: 0) == 0)

        let duplicate = try await #require(throws: PostgresError.self) {
            try await client.withTransaction { session in
                try await session.query("INSERT INTO \(table) VALUES (2)")
                try await session.query("INSERT INTO \(table) VALUES (2)")
            }
        }
        #expect(duplicate.sqlState == "23505")
        #expect(try await client.query("SELECT count(*) FROM \(table)")[0].decode(Int.self, at: 0) == 0)

        try await client.withTransaction { session in
            try await session.query("INSERT INTO \(table) VALUES (3)")
        }
        #expect(try await client.query("SELECT id FROM \(table)").map { try $0.decode(Int.self, at: 0) } == [3])
        try await client.query("DROP TABLE \(table)")
    }

    @Test func poolNeverOpensMoreThanItsLimit() async throws {
        let client = Self.makeClient(maxConnections: 3)
        defer { client.shutdown() }
        let name = client.configuration.applicationName
        let peak = Locked(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<30 {
                group.addTask {
                    let open = try await client.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pg_sleep(0.01) IS NOT NULL", name
                    )[0].decode(Int.self, at: 0)
                    peak.withLock { $0 = max($0, open) }
                }
            }
            try await group.waitForAll()
        }
        #expect(peak.withLock { $0 } >= 1)
        #expect(peak.withLock { $0 } <= 3)
    }

    @Test func poolSurvivesAServerRestart() async throws {
        let directory = TestEnvironment.scratchDirectory("pg-restart")
        let port = TestEnvironment.postgresPort + 1
        try await StackControl.run("start-postgres", directory, String(port))
        let client = Self.makeClient(port: port, maxConnections: 2)
        defer { client.shutdown() }
        #expect(try await client.query("SELECT 1")[0].decode(Int.self, at: 0) == 1)
        try await StackControl.run("stop-postgres", directory)
        await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        try await StackControl.run("start-postgres", directory, String(port))
        // The pooled connection is dead; the next statement must get a fresh one.
        #expect(try await client.query("SELECT 2")[0].decode(Int.self, at: 0) == 2)
        try await StackControl.run("stop-postgres", directory)
    }
}

/// Migrations against the test stack's Postgres.
@Suite(.timeLimit(.minutes(2)))
struct PostgresMigratorTests {
    @Test func migrationsRunOnceUnderTwoConcurrentStarters() async throws {
        let schema = TestEnvironment.uniqueName("mig")
        // Without IF NOT EXISTS, a second run of version 1 would fail with 42P07.
        let migrator = PostgresMigrator(schema: schema, migrations: [
            PostgresMigration(version: 2, name: "seed", sql: "INSERT INTO runs (note) VALUES ('v2')"),
            PostgresMigration(version: 1, name: "create", sql: "CREATE TABLE runs (id serial PRIMARY KEY, note text NOT NULL)"),
        ])
        let first = PostgresClientTests.makeClient()
        let second = PostgresClientTests.makeClient()
        defer { first.shutdown(); second.shutdown() }
        async let a = migrator.migrate(first, logger: Logger(label: "a"))
        async let b = migrator.migrate(second, logger: Logger(label: "b"))
        let results = try await [a, b]
        #expect(results.contains([1, 2]))
        #expect(results.contains([]))
        #expect(try await first.query("SELECT count(*) FROM \(schema).runs")[0].decode(Int.self, at: 0) == 1)
        #expect(try await first.query("SELECT version FROM \(schema).schema_migrations ORDER BY version").map { try $0.decode(Int.self, at: 0) } == [1, 2])
        // A later start with one more migration applies only that one.
        let extended = PostgresMigrator(schema: schema, migrations: migrator.migrations + [
            PostgresMigration(version: 3, name: "more", sql: "INSERT INTO runs (note) VALUES ('v3')"),
        ])
        #expect(try await extended.migrate(first, logger: Logger(label: "c")) == [3])
        try await first.query("DROP SCHEMA \(schema) CASCADE")
    }

    @Test func failingMigrationIsRolledBackWhole() async throws {
        let schema = TestEnvironment.uniqueName("migfail")
        let client = PostgresClientTests.makeClient()
        defer { client.shutdown() }
        let migrator = PostgresMigrator(schema: schema, migrations: [
            PostgresMigration(version: 1, name: "ok", sql: "CREATE TABLE t (id int)"),
            PostgresMigration(version: 2, name: "broken", sql: "CREATE TABLE t (id int)"),
        ])
        let error = try await #require(throws: PostgresError.self) { try await migrator.migrate(client, logger: Logger(label: "m")) }
        #expect(error.code == .migrationFailed)
        #expect(error.sqlState == "42P07")
        let exists = try await client.query("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema)
        #expect(try exists[0].decode(Int.self, at: 0) == 0)
    }
}
