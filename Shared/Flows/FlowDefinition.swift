import ConduitProtocol

/// A flow as loaded and validated (`FlowParser`): inputs, steps in a dependency order that has
/// no cycle, every reference resolved. Immutable; the YAML it came from is `source`.
public struct FlowDefinition: Sendable {
    public var name: String
    public var version: String
    public var description: String?
    /// By name.
    public var inputs: [FlowInput]
    /// As written; `order` is a topological order of their indexes.
    public var steps: [FlowStep]
    /// What the run returns: a template over `inputs` and `steps`; by default the output of
    /// the last step (as written) that ran.
    public var output: FlowTemplate?
    public var source: String
    let order: [Int]

    public func step(named name: String) -> FlowStep? { steps.first { $0.name == name } }

    /// The inputs as a JSON Schema object (what `GET /v1/flows` shows and runs are checked by).
    public var inputsSchema: JSONValue {
        var properties: [String: JSONValue] = [:]
        for input in inputs {
            var property: [String: JSONValue] = [:]
            if input.type != .any { property["type"] = .string(input.type.rawValue) }
            if let value = input.defaultValue { property["default"] = value }
            if let description = input.description { property["description"] = .string(description) }
            if let allowed = input.allowed { property["enum"] = .array(allowed) }
            properties[input.name] = .object(property)
        }
        return .object([
            "type": "object", "properties": .object(properties),
            "required": .array(inputs.filter(\.required).map { .string($0.name) }),
            "additionalProperties": false,
        ])
    }
}

public struct FlowInput: Sendable, Hashable {
    public var name: String
    public var type: FlowValueType
    public var required: Bool
    public var defaultValue: JSONValue?
    public var description: String?
    /// The only values allowed, if given (`enum:`).
    public var allowed: [JSONValue]?
}

public enum FlowValueType: String, Sendable, Hashable, CaseIterable {
    case string, number, integer, boolean, object, array, any

    func accepts(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.any, _), (.string, .string), (.number, .number), (.boolean, .bool), (.object, .object), (.array, .array): true
        case (.integer, .number(let number)): number.rounded() == number
        default: false
        }
    }
}

public struct FlowStep: Sendable {
    public var name: String
    public var executor: String
    /// Rendered just before the step runs.
    public var config: FlowTemplate
    /// Steps this one waits for: its `depends_on` (groups expanded) and every step its config
    /// or condition reads.
    public var dependsOn: [String]
    public var parallelGroup: String?
    /// Runs only when this holds; otherwise the step is `skipped`.
    public var condition: FlowExpression?
    public var retry: FlowRetry
    public var onError: FlowErrorPolicy
    public var timeout: Duration?
    /// Named by another step's `on_error: {fallback: …}`: runs only when that step fails.
    public var isFallback: Bool
}

public struct FlowRetry: Sendable, Hashable {
    public enum Backoff: String, Sendable, Hashable { case fixed, exponential }

    public var maxAttempts: Int
    public var backoff: Backoff
    public var delay: Duration
    public var maxDelay: Duration
    /// Error kinds retried (`timeout`, `upstream_error`, `rate_limit_error`, `server_error`,
    /// …); empty: every error but a bad request.
    public var on: Set<String>

    public static let none = FlowRetry(maxAttempts: 1, backoff: .fixed, delay: .milliseconds(200), maxDelay: .seconds(30), on: [])

    /// The wait before attempt `attempt + 1`.
    public func delay(after attempt: Int) -> Duration {
        switch backoff {
        case .fixed: return delay
        case .exponential:
            let factor = Int64(1) << Int64(min(max(attempt - 1, 0), 20))
            let delayed = delay * factor
            return delayed > maxDelay ? maxDelay : delayed
        }
    }

    public func retries(_ error: FlowStepError) -> Bool {
        guard error.kind != FlowStepError.invalid, error.kind != FlowStepError.cancelled else { return false }
        return on.isEmpty || on.contains(error.kind) || on.contains("any")
    }
}

public enum FlowErrorPolicy: Sendable, Hashable {
    /// The run fails (the default).
    case fail
    /// The step is `failed`, its output `null`, and the run goes on.
    case `continue`
    /// The named step runs instead, and its output stands for this one's.
    case fallback(String)
}

/// Why a step failed: `kind` is an OpenAI error type (`upstream_error`, …), `timeout`,
/// `invalid` (the step's own input is wrong: never retried) or `cancelled`.
public struct FlowStepError: Error, Sendable, CustomStringConvertible {
    public static let invalid = "invalid_request_error"
    public static let timeout = "timeout"
    public static let cancelled = "cancelled"

    public var kind: String
    public var message: String

    public init(kind: String, message: String) {
        self.kind = kind
        self.message = message
    }

    public static func invalid(_ message: String) -> FlowStepError { FlowStepError(kind: invalid, message: message) }

    public var description: String { message }
}
