import Flows
import Foundation
@testable import Orchestrator
import Synchronization

/// Flows and runs in memory, for the application tier (`PostgresFlowStore` has its own tests
/// against Postgres).
final class InMemoryFlowStore: FlowStore, Sendable {
    private let flowsByKey = Mutex<[String: [StoredFlow]]>([:])
    private let runs = Mutex<[String: FlowRunRecord]>([:])

    func save(tenant: String, _ flow: FlowDefinition) async throws {
        try flowsByKey.withLock { all in
            var versions = all["\(tenant)/\(flow.name)"] ?? []
            if let existing = versions.first(where: { $0.version == flow.version }) {
                guard existing.yaml == flow.source else { throw FlowStoreError.versionExists(flow.version) }
                versions.removeAll { $0.version == flow.version }
            }
            versions.append(StoredFlow(tenant: tenant, name: flow.name, version: flow.version, yaml: flow.source, createdAt: Date()))
            all["\(tenant)/\(flow.name)"] = versions
        }
    }

    func flow(tenant: String, name: String, version: String?) async throws -> StoredFlow? {
        flowsByKey.withLock { all in
            let versions = all["\(tenant)/\(name)"] ?? []
            return version.map { wanted in versions.first { $0.version == wanted } } ?? versions.last
        }
    }

    func flows(tenant: String) async throws -> [StoredFlow] {
        flowsByKey.withLock { all in all.filter { $0.key.hasPrefix(tenant + "/") }.compactMap(\.value.last) }
    }

    func versions(tenant: String, name: String) async throws -> [String] {
        flowsByKey.withLock { $0["\(tenant)/\(name)"]?.map(\.version) ?? [] }
    }

    func saveRun(tenant: String, _ run: FlowRunRecord) async throws { runs.withLock { $0["\(tenant)/\(run.id)"] = run } }

    func run(tenant: String, flow: String, id: String) async throws -> FlowRunRecord? {
        runs.withLock { $0["\(tenant)/\(id)"] }.flatMap { $0.flow == flow ? $0 : nil }
    }
}
