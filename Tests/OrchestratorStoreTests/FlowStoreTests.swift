import ConduitKit
import ConduitPostgres
import ConduitProtocol
import Flows
import Foundation
import Logging
@testable import Orchestrator
import Postgres
import Testing
import TestSupport

/// Flow versions and runs in the test stack's Postgres: versions immutable, the newest active,
/// runs kept whole, tenants apart; and the gate that answers 503 until the schema exists.
struct FlowStoreTests {
    static let logger = Logger(label: "flow-store-test")
    let engine = FlowEngine<String>(executors: [TransformExecutor<String>()])

    func flow(_ name: String, version: String, value: String) throws -> FlowDefinition {
        try engine.parse("name: \(name)\nversion: \"\(version)\"\nsteps: [{name: a, executor: transform, config: {value: \(value)}}]")
    }

    func withStore(_ body: (PostgresFlowStore) async throws -> Void) async throws {
        let postgres = PostgresClient(configuration: .init(port: TestEnvironment.postgresPort, user: "conduit", database: "conduit"), logger: Self.logger)
        let running = Task { try await postgres.run() }
        defer { running.cancel() }
        try await migrate(FlowMigrations.flows, on: postgres, logger: Self.logger)
        try await body(PostgresFlowStore(postgres: postgres))
    }

    @Test func versionsAreImmutableAndTheNewestIsActive() async throws {
        try await withStore { store in
            let tenant = TestEnvironment.uniqueName("tenant")
            try await store.save(tenant: tenant, try flow("f", version: "1", value: "one"))
            try await store.save(tenant: tenant, try flow("f", version: "2", value: "two"))
            #expect(try await store.flow(tenant: tenant, name: "f", version: nil)?.version == "2")
            #expect(try await store.flow(tenant: tenant, name: "f", version: "1")?.yaml.contains("one") == true)
            // The same YAML again is no change; other YAML under an existing version is refused.
            try await store.save(tenant: tenant, try flow("f", version: "1", value: "one"))
            #expect(try await store.flow(tenant: tenant, name: "f", version: nil)?.version == "1")
            await #expect(throws: FlowStoreError.self) { try await store.save(tenant: tenant, try flow("f", version: "2", value: "changed")) }
            #expect(try await store.versions(tenant: tenant, name: "f") == ["1", "2"])
            #expect(try await store.flows(tenant: tenant).map(\.name) == ["f"])
            #expect(try await store.flow(tenant: TestEnvironment.uniqueName("other"), name: "f", version: nil) == nil)
        }
    }

    @Test func runsAreKeptWholeAndByTenant() async throws {
        try await withStore { store in
            let tenant = TestEnvironment.uniqueName("tenant")
            let definition = try flow("g", version: "1", value: "x")
            let record = await engine.run(definition, inputs: .object([:]), caller: "t", runID: "run_\(UUID().uuidString)")
            try await store.saveRun(tenant: tenant, record)
            let read = try #require(try await store.run(tenant: tenant, flow: "g", id: record.id))
            #expect(read.status == .succeeded && read.output == "x" && read.steps.first?.attempts == 1)
            #expect(abs(read.startedAt.timeIntervalSince(record.startedAt)) < 0.001)
            #expect(try await store.run(tenant: "someone-else", flow: "g", id: record.id) == nil)
            #expect(try await store.run(tenant: tenant, flow: "other", id: record.id) == nil)
        }
    }

    @Test func theGateAnswers503UntilMigrated() async throws {
        try await withStore { store in
            let gate = StartGate()
            let gated = GatedFlowStore(inner: store, migrated: gate)
            await #expect(throws: APIError.self) { try await gated.flows(tenant: "t") }
            gate.open()
            let flows = try await gated.flows(tenant: TestEnvironment.uniqueName("t"))
            #expect(flows.isEmpty)
        }
    }
}
