import ConduitKit
import ConduitProtocol
import Flows
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The flows' API, generated from their definitions:
///
/// - `POST /v1/flows` — the YAML as the body (`application/yaml`): 201 with the flow; a bad
///   flow is a 400 whose message gives the path of the problem.
/// - `GET /v1/flows` — the tenant's flows and the shipped ones, each with its inputs schema.
/// - `GET /v1/flows/:name` — one flow, its versions and its YAML.
/// - `POST /v1/flows/:name/runs` — `{"inputs", "version"?, "async"?, "stream"?}`: the inputs are
///   checked against the flow's schema; the answer is the run's record when it ends, or at once
///   its id (`async`), or its events as SSE (`stream`).
/// - `GET /v1/flows/:name/runs/:id`, `POST /v1/flows/:name/runs/:id/cancel`.
///
/// Runs in progress are at most `maxRunning` per replica (`CONDUIT_FLOW_MAX_RUNNING`); past it
/// a run is refused with 429. Every run's record goes to Postgres when it ends.
struct FlowController: Sendable {
    let library: FlowLibrary
    let maxRunning: Int
    let logger: Logger
    /// The tools an agent may be given (`GET /v1/agents/tools`).
    var agentTools: @Sendable () async -> [FunctionDefinition] = { [] }
    let running = RunningFlows()

    var store: any FlowStore { library.store }
    var engine: FlowEngine<FlowCaller> { library.engine }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/flows") { request, context in try await upload(request, context) }
        router.get("/v1/flows") { _, context in try await list(context) }
        router.get("/v1/flows/:name") { _, context in try await show(context) }
        router.post("/v1/flows/:name/runs") { request, context in try await start(request, context) }
        router.get("/v1/flows/:name/runs/:id") { _, context in try await run(context) }
        router.post("/v1/flows/:name/runs/:id/cancel") { _, context in try await cancel(context) }
        // Agents are runs of the shipped `agent` flow: recorded, cancellable and streamed like any.
        router.post("/v1/agents/runs") { request, context in try await startAgent(request, context) }
        router.get("/v1/agents/runs/:id") { _, context in try await run(context, flow: "agent") }
        router.post("/v1/agents/runs/:id/cancel") { _, context in try await cancel(context, flow: "agent") }
        router.get("/v1/agents/tools") { _, context in try await tools(context) }
    }

    /// `POST /v1/agents/runs {"model", "input", "system"?, "messages"?, "tools"?, "max_steps"?,
    /// "max_seconds"?, "max_cost_usd"?, "async"?, "stream"?}`: the `agent` flow's inputs, flat.
    func startAgent(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(JSONValue.self, context: context)
        guard case .object(var inputs) = body else { throw APIError.invalidRequest("The body is a JSON object: {\"model\", \"input\", …}.") }
        let async = inputs.removeValue(forKey: "async")?.boolValue
        let stream = inputs.removeValue(forKey: "stream")?.boolValue
        return try await start(name: "agent", ask: RunRequest(inputs: .object(inputs), version: nil, async: async, stream: stream), context)
    }

    /// `GET /v1/agents/tools`: `{"data": [{"name", "description", "parameters"}]}`.
    func tools(_ context: ConduitRequestContext) async throws -> Response {
        _ = try context.require(.readFlows, "Listing tools needs the viewer, developer or admin role.")
        let list = await agentTools().map { tool -> JSONValue in
            ["name": .string(tool.name), "description": tool.description.map(JSONValue.string) ?? .null, "parameters": tool.parameters ?? .object([:])]
        }
        return try jsonResponse(JSONValue.object(["data": .array(list)]), encoder: Self.encoder)
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    func upload(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.writeFlows, "Adding flows needs the developer or admin role.")
        let bytes = try await request.body.collect(upTo: FlowParser.maxSourceBytes + 1)
        guard bytes.readableBytes <= FlowParser.maxSourceBytes else {
            throw APIError(status: .contentTooLarge, type: .invalidRequest, message: "A flow is at most \(FlowParser.maxSourceBytes) bytes of YAML.", code: "request_too_large")
        }
        guard let yaml = String(validating: bytes.readableBytesView, as: UTF8.self), !yaml.contains("\0") else {
            throw APIError.invalidRequest("The body is the flow's YAML, as UTF-8 text.")
        }
        let flow: FlowDefinition
        do {
            flow = try engine.parse(yaml)
        } catch let error as FlowValidationError {
            throw APIError(status: .badRequest, type: .invalidRequest, message: error.description, param: error.path.isEmpty ? nil : error.path, code: "invalid_flow")
        }
        do {
            try await store.save(tenant: caller.tenant, flow)
        } catch FlowStoreError.versionExists(let version) {
            throw APIError(status: .conflict, type: .invalidRequest,
                           message: "Version \(version) of '\(flow.name)' exists with other steps; versions do not change (give this one a new version).",
                           param: "version", code: "version_exists")
        }
        return try jsonResponse(Self.summary(flow, shipped: false, versions: try await store.versions(tenant: caller.tenant, name: flow.name)), status: .created)
    }

    func list(_ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.readFlows, "Reading flows needs the viewer, developer or admin role.")
        var data: [JSONValue] = []
        var seen: Set<String> = []
        for stored in try await store.flows(tenant: caller.tenant) {
            guard let flow = try? library.parse(stored.yaml) else { continue }
            seen.insert(flow.name)
            data.append(Self.summary(flow, shipped: false))
        }
        for flow in library.shipped.values.sorted(by: { $0.name < $1.name }) where !seen.contains(flow.name) {
            data.append(Self.summary(flow, shipped: true))
        }
        return try jsonResponse(JSONValue.object(["object": "list", "data": .array(data)]))
    }

    func show(_ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.readFlows, "Reading flows needs the viewer, developer or admin role.")
        let name = try context.pathParameter("name")
        guard let flow = try await library.definition(tenant: caller.tenant, name: name, version: nil) else { throw Self.notFound(name) }
        let versions = try await store.versions(tenant: caller.tenant, name: name)
        var summary = Self.summary(flow, shipped: versions.isEmpty, versions: versions.isEmpty ? [flow.version] : versions)
        if case .object(var fields) = summary {
            fields["yaml"] = .string(flow.source)
            summary = .object(fields)
        }
        return try jsonResponse(summary)
    }

    struct RunRequest: Decodable {
        var inputs: JSONValue?
        var version: String?
        var async: Bool?
        var stream: Bool?
    }

    func start(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let name = try context.pathParameter("name")
        let ask = try await request.decodeJSON(RunRequest.self, context: context)
        return try await start(name: name, ask: ask, context)
    }

    func start(name: String, ask: RunRequest, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.runFlows, "Running flows needs a role that may call the models (developer, service or admin).")
        guard let flow = try await library.definition(tenant: caller.tenant, name: name, version: ask.version) else { throw Self.notFound(name, version: ask.version) }
        let inputs: JSONValue
        do {
            inputs = try FlowInputs.validate(ask.inputs ?? .object([:]), for: flow)
        } catch let error as FlowValidationError {
            throw APIError(status: .badRequest, type: .invalidRequest, message: error.description, param: error.path, code: "invalid_inputs")
        }
        if ask.async == true, ask.stream == true { throw APIError.invalidRequest("A run is either async or streamed, not both.", param: "stream") }
        let id = "run_" + UUIDv7.make().replacingOccurrences(of: "-", with: "")
        let flowCaller = FlowCaller(context: context, tenant: caller.tenant)
        let events = AsyncStream<FlowEvent>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let wantsEvents = ask.stream == true
        let engine = self.engine
        let store = self.store
        let logger = self.logger
        let tenant = caller.tenant
        let started = Date()
        guard running.reserve(id, tenant: tenant, flow: flow, inputs: inputs, started: started, limit: maxRunning) else {
            throw APIError(status: .tooManyRequests, type: .rateLimit, message: "Too many flow runs are in progress on this replica (\(maxRunning)); retry shortly.",
                           code: "too_many_runs")
        }
        let running = self.running
        let continuation = events.continuation
        let yield: @Sendable (FlowEvent) -> Void = { event in _ = continuation.yield(event) }
        let onEvent = wantsEvents ? yield : nil
        let task = Task {
            let record = await engine.run(flow, inputs: inputs, caller: flowCaller, runID: id, events: onEvent)
            events.continuation.finish()
            // A task of its own: a cancelled run's record is written all the same.
            let saved = await Task { try await store.saveRun(tenant: tenant, record) }.result
            if case .failure(let error) = saved {
                logger.warning("flow run not recorded", metadata: ["run": "\(id)", LogKey.error: "\(error)"])
            }
            running.finish(id)
            return record
        }
        running.attach(id, task: task)
        if ask.async == true {
            return try jsonResponse(running.snapshot(id) ?? Self.placeholder(id, flow: flow, inputs: inputs, started: started), status: .accepted, encoder: Self.encoder)
        }
        if wantsEvents {
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
                let encoder = Self.encoder
                do {
                    for await event in events.stream {
                        let (kind, payload): (String, Data) = switch event {
                        case .stepStarted(let step, let attempt): ("step.started", try encoder.encode(["step": JSONValue.string(step), "attempt": .number(Double(attempt))]))
                        case .stepFinished(let step): ("step.finished", try encoder.encode(step))
                        case .runFinished(let record): ("run.finished", try encoder.encode(record))
                        }
                        try await writer.write(ByteBuffer(string: "event: \(kind)\ndata: " + String(decoding: payload, as: UTF8.self) + "\n\n"))
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                } catch {
                    // The caller hung up: the run stops with it.
                    task.cancel()
                    throw error
                }
            })
        }
        let record = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        return try jsonResponse(record, encoder: Self.encoder)
    }

    func run(_ context: ConduitRequestContext, flow: String? = nil) async throws -> Response {
        let caller = try context.require(.readFlows, "Reading flow runs needs the viewer, developer or admin role.")
        let name = try flow ?? context.pathParameter("name")
        let id = try context.pathParameter("id")
        if let live = running.snapshot(id, tenant: caller.tenant, flow: name) { return try jsonResponse(live, encoder: Self.encoder) }
        guard let record = try await store.run(tenant: caller.tenant, flow: name, id: id) else {
            throw APIError(status: .notFound, type: .invalidRequest, message: "No run '\(id)' of the flow '\(name)'.", param: "id", code: "run_not_found")
        }
        return try jsonResponse(record, encoder: Self.encoder)
    }

    func cancel(_ context: ConduitRequestContext, flow: String? = nil) async throws -> Response {
        let caller = try context.require(.runFlows, "Cancelling flow runs needs a role that may run them.")
        let name = try flow ?? context.pathParameter("name")
        let id = try context.pathParameter("id")
        if let task = running.task(id, tenant: caller.tenant, flow: name) {
            task.cancel()
            return try jsonResponse(await task.value, encoder: Self.encoder)
        }
        guard let record = try await store.run(tenant: caller.tenant, flow: name, id: id) else {
            throw APIError(status: .notFound, type: .invalidRequest, message: "No run '\(id)' of the flow '\(name)'.", param: "id", code: "run_not_found")
        }
        // Already over: cancelling changes nothing.
        return try jsonResponse(record, encoder: Self.encoder)
    }

    static func summary(_ flow: FlowDefinition, shipped: Bool, versions: [String]? = nil) -> JSONValue {
        var fields: [String: JSONValue] = [
            "object": "flow", "name": .string(flow.name), "version": .string(flow.version), "inputs": flow.inputsSchema,
            "steps": .array(flow.steps.map { .object(["name": .string($0.name), "executor": .string($0.executor)]) }),
            "shipped": .bool(shipped),
        ]
        if let description = flow.description { fields["description"] = .string(description) }
        if let versions { fields["versions"] = .array(versions.map(JSONValue.string)) }
        return .object(fields)
    }

    static func placeholder(_ id: String, flow: FlowDefinition, inputs: JSONValue, started: Date) -> FlowRunRecord {
        FlowRunRecord(id: id, flow: flow.name, version: flow.version, status: .running, inputs: inputs, output: nil, error: nil,
                      steps: [], costUSD: 0, startedAt: started, endedAt: nil)
    }

    static func notFound(_ name: String, version: String? = nil) -> APIError {
        APIError(status: .notFound, type: .invalidRequest,
                 message: version.map { "The flow '\(name)' has no version \($0)." } ?? "No flow '\(name)'.", param: "name", code: "flow_not_found")
    }
}

/// The runs in progress on this replica: their tasks (to cancel) and what they are, bounded.
final class RunningFlows: Sendable {
    struct Entry: Sendable {
        var tenant: String
        var record: FlowRunRecord
        var task: Task<FlowRunRecord, Never>?
    }

    private let entries = Mutex<[String: Entry]>([:])

    func reserve(_ id: String, tenant: String, flow: FlowDefinition, inputs: JSONValue, started: Date, limit: Int) -> Bool {
        entries.withLock { entries in
            guard entries.count < limit else { return false }
            entries[id] = Entry(tenant: tenant, record: FlowController.placeholder(id, flow: flow, inputs: inputs, started: started))
            return true
        }
    }

    func attach(_ id: String, task: Task<FlowRunRecord, Never>) {
        entries.withLock { $0[id]?.task = task }
    }

    func finish(_ id: String) {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }

    func snapshot(_ id: String, tenant: String? = nil, flow: String? = nil) -> FlowRunRecord? {
        entries.withLock { entries in
            guard let entry = entries[id], tenant == nil || entry.tenant == tenant, flow == nil || entry.record.flow == flow else { return nil }
            return entry.record
        }
    }

    func task(_ id: String, tenant: String, flow: String) -> Task<FlowRunRecord, Never>? {
        entries.withLock { entries in
            guard let entry = entries[id], entry.tenant == tenant, entry.record.flow == flow else { return nil }
            return entry.task
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
