import ConduitKit
import ConduitProtocol
import ConduitPostgres
import Flows
import Foundation
import HTTPTypes
import Logging
import Postgres
import ServiceLifecycle

/// A flow as stored: its YAML and where it came from.
struct StoredFlow: Sendable {
    var tenant: String?
    var name: String
    var version: String
    var yaml: String
    var createdAt: Date?
    /// Shipped with the platform (`deploy/flows`), the same for every tenant.
    var shipped: Bool { tenant == nil }
}

/// Why a flow cannot be stored.
enum FlowStoreError: Error {
    /// This version exists with other YAML: versions are immutable.
    case versionExists(String)
}

/// Where flows and their runs are kept. A tenant's uploads are versioned: the newest upload of
/// a name is the active version, older ones stay runnable by number.
protocol FlowStore: Sendable {
    /// Stores a version (idempotent for the same YAML) and makes it the active one.
    func save(tenant: String, _ flow: FlowDefinition) async throws
    /// The tenant's active version of `name`, or that exact version.
    func flow(tenant: String, name: String, version: String?) async throws -> StoredFlow?
    /// The active version of each of the tenant's flows.
    func flows(tenant: String) async throws -> [StoredFlow]
    func versions(tenant: String, name: String) async throws -> [String]
    func saveRun(tenant: String, _ run: FlowRunRecord) async throws
    func run(tenant: String, flow: String, id: String) async throws -> FlowRunRecord?
}

enum FlowMigrations {
    static let flows = PostgresMigrator(schema: "flows", migrations: [
        PostgresMigration(version: 1, name: "flow versions and runs", sql: """
            CREATE TABLE definitions (
                tenant_id text NOT NULL,
                name text NOT NULL,
                version text NOT NULL,
                yaml text NOT NULL,
                active boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, name, version)
            );
            CREATE UNIQUE INDEX definitions_active ON definitions (tenant_id, name) WHERE active;
            CREATE TABLE runs (
                id text PRIMARY KEY,
                tenant_id text NOT NULL,
                flow text NOT NULL,
                version text NOT NULL,
                status text NOT NULL,
                record jsonb NOT NULL,
                cost_usd double precision NOT NULL DEFAULT 0,
                started_at timestamptz NOT NULL,
                ended_at timestamptz
            );
            CREATE INDEX runs_by_flow ON runs (tenant_id, flow, started_at DESC);
            """),
    ])
}

struct PostgresFlowStore: FlowStore {
    let postgres: PostgresClient

    func save(tenant: String, _ flow: FlowDefinition) async throws {
        try await postgres.withTransaction { session in
            try await session.query("SELECT pg_advisory_xact_lock(hashtext('flows:' || $1 || ':' || $2))", tenant, flow.name)
            let existing = try await session.query("SELECT yaml FROM flows.definitions WHERE tenant_id = $1 AND name = $2 AND version = $3",
                                                   tenant, flow.name, flow.version)
            if let row = existing.first, try row.decode(String.self, at: 0) != flow.source { throw FlowStoreError.versionExists(flow.version) }
            try await session.query("UPDATE flows.definitions SET active = false WHERE tenant_id = $1 AND name = $2 AND active", tenant, flow.name)
            try await session.query("""
                INSERT INTO flows.definitions (tenant_id, name, version, yaml, active) VALUES ($1, $2, $3, $4, true)
                ON CONFLICT (tenant_id, name, version) DO UPDATE SET active = true
                """, tenant, flow.name, flow.version, flow.source)
        }
    }

    func flow(tenant: String, name: String, version: String?) async throws -> StoredFlow? {
        let rows = if let version {
            try await postgres.query("SELECT name, version, yaml, created_at FROM flows.definitions WHERE tenant_id = $1 AND name = $2 AND version = $3",
                                     tenant, name, version)
        } else {
            try await postgres.query("SELECT name, version, yaml, created_at FROM flows.definitions WHERE tenant_id = $1 AND name = $2 AND active",
                                     tenant, name)
        }
        return try rows.first.map { try Self.stored($0, tenant: tenant) }
    }

    func flows(tenant: String) async throws -> [StoredFlow] {
        try await postgres.query("SELECT name, version, yaml, created_at FROM flows.definitions WHERE tenant_id = $1 AND active ORDER BY name LIMIT 1000", tenant)
            .map { try Self.stored($0, tenant: tenant) }
    }

    func versions(tenant: String, name: String) async throws -> [String] {
        try await postgres.query("SELECT version FROM flows.definitions WHERE tenant_id = $1 AND name = $2 ORDER BY created_at", tenant, name)
            .map { try $0.decode(String.self, at: 0) }
    }

    func saveRun(tenant: String, _ run: FlowRunRecord) async throws {
        try await postgres.query("""
            INSERT INTO flows.runs (id, tenant_id, flow, version, status, record, cost_usd, started_at, ended_at)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, record = excluded.record, cost_usd = excluded.cost_usd, ended_at = excluded.ended_at
            """, run.id, tenant, run.flow, run.version, run.status.rawValue, try PostgresJSON(encoding: run), run.costUSD, run.startedAt, run.endedAt)
    }

    func run(tenant: String, flow: String, id: String) async throws -> FlowRunRecord? {
        try await postgres.query("SELECT record FROM flows.runs WHERE tenant_id = $1 AND flow = $2 AND id = $3", tenant, flow, id)
            .first.map { try $0.decode(PostgresJSON.self, at: 0).decode(FlowRunRecord.self) }
    }

    static func stored(_ row: PostgresRow, tenant: String) throws -> StoredFlow {
        StoredFlow(tenant: tenant, name: try row.decode(String.self, at: 0), version: try row.decode(String.self, at: 1),
                   yaml: try row.decode(String.self, at: 2), createdAt: try row.decode(Date.self, at: 3))
    }
}

/// `PostgresFlowStore` once its schema is migrated: before that (Postgres still starting, or
/// down at start) flows answer 503 and the chat path is unaffected.
struct GatedFlowStore: FlowStore {
    let inner: any FlowStore
    let migrated: StartGate

    private func ready() throws {
        guard migrated.isOpen else {
            throw APIError(status: .serviceUnavailable, type: .server, message: "Flows are not available yet: their database is being migrated or cannot be reached.",
                           code: "flows_unavailable")
        }
    }

    func save(tenant: String, _ flow: FlowDefinition) async throws { try ready(); try await inner.save(tenant: tenant, flow) }
    func flow(tenant: String, name: String, version: String?) async throws -> StoredFlow? { try ready(); return try await inner.flow(tenant: tenant, name: name, version: version) }
    func flows(tenant: String) async throws -> [StoredFlow] { try ready(); return try await inner.flows(tenant: tenant) }
    func versions(tenant: String, name: String) async throws -> [String] { try ready(); return try await inner.versions(tenant: tenant, name: name) }
    func saveRun(tenant: String, _ run: FlowRunRecord) async throws { try ready(); try await inner.saveRun(tenant: tenant, run) }
    func run(tenant: String, flow: String, id: String) async throws -> FlowRunRecord? { try ready(); return try await inner.run(tenant: tenant, flow: flow, id: id) }
}

/// Migrates the flows' schema in the background, retrying until Postgres answers, then opens
/// the gate; it runs until shutdown.
struct FlowMigrationService: Service {
    let postgres: PostgresClient
    let migrated: StartGate
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await migrate(FlowMigrations.flows, on: postgres, logger: logger)
                migrated.open()
                break
            } catch {
                logger.warning("flows' schema not migrated; retrying", metadata: [LogKey.error: "\(error)"])
                try? await Task.sleep(for: .seconds(5))
            }
        }
        try? await gracefulShutdown()
    }
}
