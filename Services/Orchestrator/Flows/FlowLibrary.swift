import ConduitKit
import Flows
import Foundation
import Logging
import Synchronization

/// Where a run finds its flow: the tenant's own uploads first (`FlowStore`), then the flows
/// shipped with the platform (`deploy/flows/*.yaml`, loaded at start; a shipped flow that does
/// not validate stops the start, naming the file and the problem). Parsed definitions are kept
/// by their YAML, so a version is parsed once however often it runs.
final class FlowLibrary: Sendable {
    let store: any FlowStore
    private let shippedBox: Mutex<[String: FlowDefinition]>
    private let engineBox = Mutex<FlowEngine<FlowCaller>?>(nil)
    private let parsed = Mutex<[String: FlowDefinition]>([:])
    static let maxParsed = 1000

    init(store: any FlowStore, shipped: [String: FlowDefinition] = [:]) {
        self.store = store
        shippedBox = Mutex(shipped)
    }

    /// The shipped flows, by name (set once at start, after the engine that parses them exists).
    var shipped: [String: FlowDefinition] {
        get { shippedBox.withLock { $0 } }
        set { shippedBox.withLock { $0 = newValue } }
    }

    /// Set once the engine exists (it holds the executors, one of which holds this library).
    func attach(_ engine: FlowEngine<FlowCaller>) { engineBox.withLock { $0 = engine } }

    var engine: FlowEngine<FlowCaller> {
        guard let engine = engineBox.withLock({ $0 }) else { preconditionFailure("FlowLibrary used before attach") }
        return engine
    }

    /// The flows in `directory` (`*.yaml`, `*.yml`), parsed by `engine`.
    static func loadShipped(from directory: String, engine: FlowEngine<FlowCaller>, logger: Logger) throws -> [String: FlowDefinition] {
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            logger.info("no shipped flows", metadata: ["directory": "\(directory)"])
            return [:]
        }
        var flows: [String: FlowDefinition] = [:]
        for file in files.sorted() where file.hasSuffix(".yaml") || file.hasSuffix(".yml") {
            let path = directory + "/" + file
            let yaml = try String(contentsOfFile: path, encoding: .utf8)
            do {
                let flow = try engine.parse(yaml)
                guard flows[flow.name] == nil else { throw ConfigurationError(key: "CONDUIT_FLOWS_DIR", expected: "one file per flow name (\(flow.name) twice)") }
                flows[flow.name] = flow
            } catch let error as FlowValidationError {
                throw ConfigurationError(key: "CONDUIT_FLOWS_DIR", expected: "valid flows: \(file): \(error)")
            }
        }
        logger.info("shipped flows loaded", metadata: ["directory": "\(directory)", "flows": "\(flows.keys.sorted().joined(separator: ","))"])
        return flows
    }

    /// The tenant's flow of that name (its active version, or `version`), else a shipped one.
    func definition(tenant: String, name: String, version: String?) async throws -> FlowDefinition? {
        if let stored = try await store.flow(tenant: tenant, name: name, version: version) {
            return try parse(stored.yaml)
        }
        guard let shipped = shipped[name], version == nil || version == shipped.version else { return nil }
        return shipped
    }

    func parse(_ yaml: String) throws -> FlowDefinition {
        if let known = parsed.withLock({ $0[yaml] }) { return known }
        let flow = try engine.parse(yaml)
        parsed.withLock { parsed in
            if parsed.count >= Self.maxParsed { parsed.removeAll(keepingCapacity: true) }
            parsed[yaml] = flow
        }
        return flow
    }
}
