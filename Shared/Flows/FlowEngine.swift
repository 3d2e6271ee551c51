import ConduitProtocol
import Foundation

/// One kind of step: `chat`, `transform`, `flow`, … `Caller` is what a run carries for its
/// executors (in the orchestrator: who asked, to bill and authorize model calls).
public protocol FlowExecutor<Caller>: Sendable {
    associatedtype Caller: Sendable
    var name: String { get }
    /// Checks a step's config when the flow loads (before templates are rendered: a value may
    /// still be a `{{ … }}` string). Throw `FlowValidationError` with a path below `path`.
    func validate(config: JSONValue, path: String) throws
    /// Runs the step with its rendered config.
    func run(config: JSONValue, context: FlowStepContext<Caller>) async throws -> FlowStepOutput
}

extension FlowExecutor {
    public func validate(config: JSONValue, path: String) throws {}
}

public struct FlowStepOutput: Sendable {
    public var value: JSONValue
    /// What the step's model calls cost, in USD.
    public var costUSD: Double

    public init(_ value: JSONValue, costUSD: Double = 0) {
        self.value = value
        self.costUSD = costUSD
    }
}

/// What a step's executor gets besides its config.
public struct FlowStepContext<Caller: Sendable>: Sendable {
    public let runID: String
    public let flow: String
    public let step: String
    public let attempt: Int
    /// 0 for a run started by a caller; one more per `flow` step above it.
    public let depth: Int
    public let caller: Caller
    let engine: FlowEngine<Caller>

    /// Runs `flow` as a nested run of this one (same caller, one level deeper); its record.
    public func runNested(_ flow: FlowDefinition, inputs: JSONValue) async throws -> FlowRunRecord {
        guard depth + 1 <= engine.limits.maxDepth else {
            throw FlowStepError.invalid("flows nest at most \(engine.limits.maxDepth) deep")
        }
        let validated = try FlowInputs.validate(inputs, for: flow)
        return await engine.run(flow, inputs: validated, caller: caller, runID: "\(runID)/\(step)", depth: depth + 1)
    }
}

/// A run's record: what `POST /v1/flows/{name}/runs` returns and Postgres keeps.
public struct FlowRunRecord: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case running, succeeded, failed, cancelled }

    public var id: String
    public var flow: String
    public var version: String
    public var status: Status
    public var inputs: JSONValue
    public var output: JSONValue?
    public var error: String?
    public var steps: [FlowStepRecord]
    public var costUSD: Double
    public var startedAt: Date
    public var endedAt: Date?

    public init(id: String, flow: String, version: String, status: Status, inputs: JSONValue, output: JSONValue?, error: String?,
                steps: [FlowStepRecord], costUSD: Double, startedAt: Date, endedAt: Date?) {
        self.id = id
        self.flow = flow
        self.version = version
        self.status = status
        self.inputs = inputs
        self.output = output
        self.error = error
        self.steps = steps
        self.costUSD = costUSD
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, flow, version, status, inputs, output, error, steps
        case costUSD = "cost_usd"
        case startedAt = "started_at"
        case endedAt = "ended_at"
    }
}

public struct FlowStepRecord: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case pending, running, succeeded, failed, skipped }

    public var name: String
    public var executor: String
    public var status: Status
    public var attempts: Int
    public var output: JSONValue?
    public var error: String?
    /// The error's kind (`upstream_error`, `timeout`, …) when it failed.
    public var errorType: String?
    /// The step that ran in this one's stead after it failed.
    public var recoveredBy: String?
    public var costUSD: Double
    public var startedAt: Date?
    public var endedAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, executor, status, attempts, output, error
        case errorType = "error_type"
        case recoveredBy = "recovered_by"
        case costUSD = "cost_usd"
        case startedAt = "started_at"
        case endedAt = "ended_at"
    }
}

/// What a streamed run sends as it goes.
public enum FlowEvent: Sendable {
    case stepStarted(name: String, attempt: Int)
    case stepFinished(FlowStepRecord)
    case runFinished(FlowRunRecord)
}

public enum FlowInputs {
    /// The run's inputs checked against the flow's: an object, every required input there,
    /// each of its type (and enum), no unknown one; defaults filled in. Errors name the input
    /// (`inputs.text: expected a string`).
    public static func validate(_ inputs: JSONValue, for flow: FlowDefinition) throws -> JSONValue {
        let given: [String: JSONValue]
        switch inputs {
        case .null: given = [:]
        case .object(let fields): given = fields
        default: throw FlowValidationError("inputs", "an object of the flow's inputs")
        }
        for key in given.keys.sorted() where !flow.inputs.contains(where: { $0.name == key }) {
            throw FlowValidationError("inputs.\(key)", "the flow '\(flow.name)' has no such input (\(flow.inputs.map(\.name).joined(separator: ", ")))")
        }
        var result: [String: JSONValue] = [:]
        for input in flow.inputs {
            guard let value = given[input.name] ?? input.defaultValue else {
                if input.required { throw FlowValidationError("inputs.\(input.name)", "required") }
                result[input.name] = .null
                continue
            }
            if value == .null, !input.required { result[input.name] = .null; continue }
            guard input.type.accepts(value) else { throw FlowValidationError("inputs.\(input.name)", "expected \(input.type == .integer ? "an" : "a") \(input.type.rawValue)") }
            if let allowed = input.allowed, !allowed.contains(value) {
                throw FlowValidationError("inputs.\(input.name)", "one of \(allowed.map(\.jsonString).joined(separator: ", "))")
            }
            result[input.name] = value
        }
        return .object(result)
    }
}

/// Runs flows: steps whose dependencies are done start at once, up to `maxConcurrentSteps`
/// together; a step's condition false → `skipped`; a failure is retried by its policy, then
/// handled by its `on_error`. A dependant runs once each of its dependencies `succeeded`, was
/// `skipped` (its output reads `null`), or `failed` with `on_error: continue` (`null`) or was
/// rescued by a fallback (the fallback's output); a failure the step does not handle fails the
/// run, and what has not started is `skipped`. Cancelling the task running `run` cancels the
/// running steps and records the run `cancelled`.
public final class FlowEngine<Caller: Sendable>: Sendable, FlowExecutorCatalog {
    public struct Limits: Sendable {
        public var maxConcurrentSteps = 8
        public var maxDepth = 4
        public init() {}
    }

    public let executors: [String: any FlowExecutor<Caller>]
    public let limits: Limits

    public init(executors: [any FlowExecutor<Caller>], limits: Limits = Limits()) {
        self.executors = Dictionary(executors.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.limits = limits
    }

    public func validator(for executor: String) -> (@Sendable (JSONValue, String) throws -> Void)? {
        guard let found = executors[executor] else { return nil }
        return { config, path in try found.validate(config: config, path: path) }
    }

    public var executorNames: [String] { Array(executors.keys) }

    public func parse(_ yaml: String) throws -> FlowDefinition {
        try FlowParser.parse(yaml, executors: self)
    }

    /// Runs `flow` with inputs already validated (`FlowInputs.validate`).
    public func run(_ flow: FlowDefinition, inputs: JSONValue, caller: Caller, runID: String, depth: Int = 0,
                    events: (@Sendable (FlowEvent) -> Void)? = nil) async -> FlowRunRecord {
        var record = FlowRunRecord(
            id: runID, flow: flow.name, version: flow.version, status: .running, inputs: inputs, output: nil, error: nil,
            steps: flow.steps.map { FlowStepRecord(name: $0.name, executor: $0.executor, status: .pending, attempts: 0, costUSD: 0) },
            costUSD: 0, startedAt: Date(), endedAt: nil)
        var results: [String: JSONValue] = [:]
        var failure: String?
        let index = Dictionary(uniqueKeysWithValues: flow.steps.enumerated().map { ($0.element.name, $0.offset) })

        await withTaskGroup(of: (Int, FlowStepRecord, JSONValue).self) { group in
            var running = 0
            func ready() -> [Int] {
                flow.order.filter { position in
                    let step = flow.steps[position]
                    guard !step.isFallback, record.steps[position].status == .pending else { return false }
                    return step.dependsOn.allSatisfy { dependency in
                        let status = record.steps[index[dependency]!]
                        return status.status == .succeeded || status.status == .skipped || (status.status == .failed && results[dependency] != nil)
                    }
                }
            }
            while failure == nil, !Task.isCancelled {
                for position in ready() where running < limits.maxConcurrentSteps {
                    record.steps[position].status = .running
                    let scope = Self.scope(inputs: inputs, record: record, results: results)
                    running += 1
                    group.addTask {
                        await self.execute(flow, position: position, scope: scope, caller: caller, runID: runID, depth: depth, events: events)
                    }
                }
                guard running > 0, let (position, step, output) = await group.next() else { break }
                running -= 1
                record.steps[position] = step
                record.costUSD += step.costUSD
                events?(.stepFinished(step))
                switch step.status {
                case .succeeded, .skipped:
                    results[step.name] = output
                case .failed where step.errorType == FlowStepError.cancelled:
                    failure = step.error
                case .failed:
                    switch flow.steps[position].onError {
                    case .continue:
                        results[step.name] = .null
                    case .fallback(let name):
                        let fallbackPosition = index[name]!
                        record.steps[fallbackPosition].status = .running
                        let scope = Self.scope(inputs: inputs, record: record, results: results)
                        let rescue = await execute(flow, position: fallbackPosition, scope: scope, caller: caller, runID: runID, depth: depth, events: events)
                        record.steps[fallbackPosition] = rescue.1
                        record.costUSD += rescue.1.costUSD
                        events?(.stepFinished(rescue.1))
                        if rescue.1.status == .succeeded {
                            record.steps[position].recoveredBy = name
                            results[step.name] = rescue.2
                            results[name] = rescue.2
                        } else {
                            failure = "step '\(step.name)' failed (\(step.error ?? "error")) and its fallback '\(name)' too (\(rescue.1.error ?? "error"))"
                        }
                    case .fail:
                        failure = "step '\(step.name)' failed: \(step.error ?? "error")"
                    }
                default:
                    break
                }
            }
            group.cancelAll()
            for await (position, step, _) in group {
                record.steps[position] = step
                record.costUSD += step.costUSD
            }
        }
        let cancelled = Task.isCancelled
        for position in record.steps.indices where record.steps[position].status == .pending || record.steps[position].status == .running {
            record.steps[position].status = .skipped
        }
        if cancelled {
            record.status = .cancelled
            record.error = "the run was cancelled"
        } else if let failure {
            record.status = .failed
            record.error = failure
        } else {
            record.status = .succeeded
            let scope = Self.scope(inputs: inputs, record: record, results: results)
            if let output = flow.output {
                record.output = output.render(scope)
            } else {
                let last = flow.steps.indices.last { !flow.steps[$0].isFallback && record.steps[$0].status != .skipped }
                record.output = last.flatMap { results[flow.steps[$0].name] } ?? .null
            }
        }
        record.endedAt = Date()
        events?(.runFinished(record))
        return record
    }

    /// What templates read: `inputs`, and `steps.<name>.output` / `.status` / `.attempts`.
    static func scope(inputs: JSONValue, record: FlowRunRecord, results: [String: JSONValue]) -> [String: JSONValue] {
        var steps: [String: JSONValue] = [:]
        for step in record.steps where step.status != .pending && step.status != .running {
            steps[step.name] = .object([
                "output": results[step.name] ?? step.output ?? .null, "status": .string(step.status.rawValue),
                "attempts": .number(Double(step.attempts)),
            ])
        }
        return ["inputs": inputs, "steps": .object(steps)]
    }

    /// One step: condition, config, attempts with their waits and timeout.
    private func execute(_ flow: FlowDefinition, position: Int, scope: [String: JSONValue], caller: Caller, runID: String, depth: Int,
                         events: (@Sendable (FlowEvent) -> Void)?) async -> (Int, FlowStepRecord, JSONValue) {
        let step = flow.steps[position]
        var record = FlowStepRecord(name: step.name, executor: step.executor, status: .running, attempts: 0, costUSD: 0, startedAt: Date())
        if let condition = step.condition, !condition.holds(in: scope) {
            record.status = .skipped
            record.endedAt = Date()
            return (position, record, .null)
        }
        guard let executor = executors[step.executor] else {
            record.status = .failed
            record.error = "no executor '\(step.executor)'"
            record.errorType = FlowStepError.invalid
            record.endedAt = Date()
            return (position, record, .null)
        }
        let config = step.config.render(scope)
        while true {
            record.attempts += 1
            events?(.stepStarted(name: step.name, attempt: record.attempts))
            let context = FlowStepContext(runID: runID, flow: flow.name, step: step.name, attempt: record.attempts, depth: depth, caller: caller, engine: self)
            do {
                let output = try await Self.withTimeout(step.timeout) { try await executor.run(config: config, context: context) }
                record.status = .succeeded
                record.output = output.value
                record.costUSD += output.costUSD
                record.endedAt = Date()
                return (position, record, output.value)
            } catch {
                let failure = Self.stepError(error)
                record.error = failure.message
                record.errorType = failure.kind
                guard record.attempts < step.retry.maxAttempts, step.retry.retries(failure), !Task.isCancelled else { break }
                do {
                    try await Task.sleep(for: step.retry.delay(after: record.attempts))
                } catch {
                    record.error = "cancelled"
                    record.errorType = FlowStepError.cancelled
                    break
                }
            }
        }
        record.status = .failed
        record.endedAt = Date()
        return (position, record, .null)
    }

    static func stepError(_ error: any Error) -> FlowStepError {
        switch error {
        case let failure as FlowStepError: failure
        case is CancellationError: FlowStepError(kind: FlowStepError.cancelled, message: "cancelled")
        case let invalid as FlowValidationError: FlowStepError.invalid(invalid.description)
        default: FlowStepError(kind: "server_error", message: "\(error)")
        }
    }

    /// `work`, failed with a `timeout` error after `limit` (its task cancelled).
    static func withTimeout<T: Sendable>(_ limit: Duration?, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let limit else { return try await work() }
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw FlowStepError(kind: FlowStepError.timeout, message: "the step took longer than its timeout (\(limit))")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}

/// `transform`: its `value`, rendered.
public struct TransformExecutor<Caller: Sendable>: FlowExecutor {
    public let name = "transform"
    public init() {}

    public func validate(config: JSONValue, path: String) throws {
        guard config["value"] != nil else { throw FlowValidationError("\(path).value", "required: the value to build") }
    }

    public func run(config: JSONValue, context: FlowStepContext<Caller>) async throws -> FlowStepOutput {
        FlowStepOutput(config["value"] ?? .null)
    }
}

/// `combine`: its `sources` (a list), each rendered: the list of their values.
public struct CombineExecutor<Caller: Sendable>: FlowExecutor {
    public let name = "combine"
    public init() {}

    public func validate(config: JSONValue, path: String) throws {
        guard case .array? = config["sources"] else { throw FlowValidationError("\(path).sources", "required: a list of values") }
    }

    public func run(config: JSONValue, context: FlowStepContext<Caller>) async throws -> FlowStepOutput {
        guard case .array(let sources)? = config["sources"] else { throw FlowStepError.invalid("'sources' is a list") }
        return FlowStepOutput(.array(sources))
    }
}
