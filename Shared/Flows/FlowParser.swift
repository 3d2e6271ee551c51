import ConduitProtocol
import Foundation
import Yams

/// A flow that cannot load, with where: `steps[2].condition: unknown step 'check_type'`.
public struct FlowValidationError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// What a flow's executors are checked against when it loads.
public protocol FlowExecutorCatalog: Sendable {
    /// Nil when no executor has this name.
    func validator(for executor: String) -> (@Sendable (JSONValue, String) throws -> Void)?
    var executorNames: [String] { get }
}

/// Reads a flow's YAML and checks everything that can be checked before it runs: the shape
/// of every field, names, executors and their configs, every template and condition, every
/// reference (to inputs, steps, groups, fallbacks) and that the steps have no cycle.
public enum FlowParser {
    /// A flow's YAML text may not be larger (uploads), nor have more steps.
    public static let maxSourceBytes = 256 * 1024
    public static let maxSteps = 200
    /// Values in the loaded document at most: YAML aliases can make a small text a huge tree.
    public static let maxNodes = 100_000

    public static func parse(_ yaml: String, executors: some FlowExecutorCatalog) throws -> FlowDefinition {
        guard yaml.utf8.count <= maxSourceBytes else { throw FlowValidationError("", "a flow is at most \(maxSourceBytes) bytes of YAML") }
        // Composed, not loaded: Yams's loader expands aliases anew at every use (a few lines can
        // stand for billions of values); the node tree shares them, and `json` counts as it goes.
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: yaml)
        } catch {
            throw FlowValidationError("", "not valid YAML: \(Self.describe(error))")
        }
        var budget = maxNodes
        let converted = try composed.map { try Self.json($0, budget: &budget) }
        guard let document = converted, case .object(let fields) = document else {
            throw FlowValidationError("", "a flow is a YAML mapping with name, steps and (optionally) inputs and output")
        }
        for key in fields.keys where !["name", "version", "description", "inputs", "steps", "output"].contains(key) {
            throw FlowValidationError(key, "unknown field (a flow has name, version, description, inputs, steps, output)")
        }
        guard case .string(let name)? = fields["name"], FlowNames.isValid(name) else {
            throw FlowValidationError("name", "required: 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit")
        }
        let version: String
        switch fields["version"] {
        case nil: version = "1"
        case .string(let text)? where !text.isEmpty && text.count <= 32: version = text
        case .number(let number)?: version = FlowTemplate.text(of: .number(number))
        default: throw FlowValidationError("version", "a short string or number")
        }
        var description: String?
        if let value = fields["description"] {
            guard case .string(let text) = value else { throw FlowValidationError("description", "a string") }
            description = text
        }
        let inputs = try parseInputs(fields["inputs"])
        guard case .array(let rawSteps)? = fields["steps"], !rawSteps.isEmpty else {
            throw FlowValidationError("steps", "required: a list of at least one step")
        }
        guard rawSteps.count <= maxSteps else { throw FlowValidationError("steps", "at most \(maxSteps) steps") }
        var steps: [FlowStep] = []
        var declared: [[String]] = []
        for (index, raw) in rawSteps.enumerated() {
            let (step, dependsOn) = try parseStep(raw, path: "steps[\(index)]", executors: executors)
            if steps.contains(where: { $0.name == step.name }) { throw FlowValidationError("steps[\(index)].name", "'\(step.name)' is used by two steps") }
            steps.append(step)
            declared.append(dependsOn)
        }
        let groups = Dictionary(grouping: steps.filter { $0.parallelGroup != nil }, by: { $0.parallelGroup! }).mapValues { $0.map(\.name) }
        for group in groups.keys where steps.contains(where: { $0.name == group }) {
            throw FlowValidationError("steps", "'\(group)' names both a step and a parallel group")
        }
        let names = Set(steps.map(\.name))
        let inputNames = Set(inputs.map(\.name))
        // Dependencies: what depends_on says (groups expanded) and what templates read.
        for index in steps.indices {
            let path = "steps[\(index)]"
            var dependencies: [String] = []
            for (position, target) in declared[index].enumerated() {
                if let members = groups[target] {
                    if members.contains(steps[index].name) {
                        throw FlowValidationError("\(path).depends_on[\(position)]", "'\(target)' is the step's own parallel group")
                    }
                    dependencies += members
                } else if names.contains(target) {
                    dependencies.append(target)
                } else {
                    throw FlowValidationError("\(path).depends_on[\(position)]", "unknown step or parallel group '\(target)'")
                }
            }
            var reads = steps[index].config.referencedSteps.map { (step: $0.step, path: "\(path).config" + ($0.path.isEmpty ? "" : ".\($0.path)")) }
            if let condition = steps[index].condition {
                reads += condition.referencedSteps.map { (step: $0, path: "\(path).condition") }
            }
            for read in reads {
                guard names.contains(read.step) else { throw FlowValidationError(read.path, "unknown step '\(read.step)'") }
                dependencies.append(read.step)
            }
            try checkRoots(steps[index], path: path, inputs: inputNames)
            if dependencies.contains(steps[index].name) { throw FlowValidationError(path, "cycle: step '\(steps[index].name)' depends on itself") }
            var unique: [String] = []
            for dependency in dependencies where !unique.contains(dependency) { unique.append(dependency) }
            steps[index].dependsOn = unique
        }
        // Fallbacks: a named step, not itself, that runs only in the failed step's stead.
        for (index, step) in steps.enumerated() {
            guard case .fallback(let target) = step.onError else { continue }
            guard let targetIndex = steps.firstIndex(where: { $0.name == target }) else {
                throw FlowValidationError("steps[\(index)].on_error.fallback", "unknown step '\(target)'")
            }
            guard target != step.name else { throw FlowValidationError("steps[\(index)].on_error.fallback", "a step cannot be its own fallback") }
            steps[targetIndex].isFallback = true
        }
        let order = try topologicalOrder(steps)
        for (index, step) in steps.enumerated() where step.isFallback {
            // It runs when the step it stands in for fails: what it reads must be done by then.
            let rescued = steps.filter { if case .fallback(step.name) = $0.onError { true } else { false } }
            for other in rescued {
                let before = ancestors(of: other.name, in: steps)
                if let missing = step.dependsOn.first(where: { !before.contains($0) }) {
                    throw FlowValidationError("steps[\(index)]", "fallback of '\(other.name)' reads '\(missing)', which '\(other.name)' does not depend on")
                }
            }
            if let dependant = steps.first(where: { $0.dependsOn.contains(step.name) }) {
                throw FlowValidationError("steps[\(index)]", "'\(dependant.name)' depends on '\(step.name)', which only runs as a fallback (depend on the step it stands in for)")
            }
        }
        var output: FlowTemplate?
        if let raw = fields["output"] {
            let template: FlowTemplate
            do {
                template = try FlowTemplate(raw)
            } catch let problem as FlowTemplate.Problem {
                throw FlowValidationError("output" + (problem.path.isEmpty ? "" : ".\(problem.path)"), problem.message)
            }
            for read in template.referencedSteps where !names.contains(read.step) {
                throw FlowValidationError("output" + (read.path.isEmpty ? "" : ".\(read.path)"), "unknown step '\(read.step)'")
            }
            if let unknown = template.unknownRoots(allowed: ["inputs", "steps"]).first {
                throw FlowValidationError("output" + (unknown.path.isEmpty ? "" : ".\(unknown.path)"), "unknown name '\(unknown.root)' (templates read inputs and steps)")
            }
            output = template
        }
        return FlowDefinition(name: name, version: version, description: description, inputs: inputs, steps: steps, output: output, source: yaml, order: order)
    }

    // MARK: - Parts

    static func parseInputs(_ raw: JSONValue?) throws -> [FlowInput] {
        guard let raw else { return [] }
        guard case .object(let fields) = raw else { throw FlowValidationError("inputs", "a mapping of input names to their type or schema") }
        var inputs: [FlowInput] = []
        for (name, spec) in fields.sorted(by: { $0.key < $1.key }) {
            let path = "inputs.\(name)"
            guard FlowNames.isIdentifier(name) else { throw FlowValidationError(path, "an input name is letters, digits and '_', starting with a letter or '_'") }
            var input = FlowInput(name: name, type: .string, required: true)
            switch spec {
            case .string(let type):
                guard let parsed = FlowValueType(rawValue: type) else { throw FlowValidationError(path, "unknown type '\(type)' (\(FlowValueType.allCases.map(\.rawValue).joined(separator: ", ")))") }
                input.type = parsed
            case .object(let schema):
                for key in schema.keys where !["type", "required", "default", "description", "enum"].contains(key) {
                    throw FlowValidationError("\(path).\(key)", "unknown field (an input has type, required, default, description, enum)")
                }
                if let type = schema["type"] {
                    guard case .string(let text) = type, let parsed = FlowValueType(rawValue: text) else {
                        throw FlowValidationError("\(path).type", "one of \(FlowValueType.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    input.type = parsed
                }
                if let value = schema["description"] {
                    guard case .string(let text) = value else { throw FlowValidationError("\(path).description", "a string") }
                    input.description = text
                }
                if let value = schema["enum"] {
                    guard case .array(let allowed) = value, !allowed.isEmpty else { throw FlowValidationError("\(path).enum", "a non-empty list") }
                    if let bad = allowed.firstIndex(where: { !input.type.accepts($0) }) {
                        throw FlowValidationError("\(path).enum[\(bad)]", "not a \(input.type.rawValue)")
                    }
                    input.allowed = allowed
                }
                if let value = schema["default"] {
                    guard input.type.accepts(value) else { throw FlowValidationError("\(path).default", "not a \(input.type.rawValue)") }
                    if let allowed = input.allowed, !allowed.contains(value) { throw FlowValidationError("\(path).default", "not one of its enum") }
                    input.defaultValue = value
                    input.required = false
                }
                if let value = schema["required"] {
                    guard case .bool(let flag) = value else { throw FlowValidationError("\(path).required", "true or false") }
                    input.required = flag && input.defaultValue == nil
                }
            default:
                throw FlowValidationError(path, "a type name or a mapping with type, required, default, description, enum")
            }
            inputs.append(input)
        }
        return inputs
    }

    static func parseStep(_ raw: JSONValue, path: String, executors: some FlowExecutorCatalog) throws -> (FlowStep, [String]) {
        guard case .object(let fields) = raw else { throw FlowValidationError(path, "a step is a mapping with name and executor") }
        let known = ["name", "executor", "config", "depends_on", "parallel_group", "condition", "retry", "on_error", "timeout"]
        for key in fields.keys.sorted() where !known.contains(key) {
            throw FlowValidationError("\(path).\(key)", "unknown field (a step has \(known.joined(separator: ", ")))")
        }
        guard case .string(let name)? = fields["name"], FlowNames.isIdentifier(name) else {
            throw FlowValidationError("\(path).name", "required: letters, digits, '_' and '-', starting with a letter or '_' (templates name it: steps.<name>)")
        }
        guard case .string(let executor)? = fields["executor"] else { throw FlowValidationError("\(path).executor", "required") }
        guard let validate = executors.validator(for: executor) else {
            throw FlowValidationError("\(path).executor", "unknown executor '\(executor)' (\(executors.executorNames.sorted().joined(separator: ", ")))")
        }
        let rawConfig = fields["config"] ?? .object([:])
        guard case .object = rawConfig else { throw FlowValidationError("\(path).config", "a mapping") }
        let config: FlowTemplate
        do {
            config = try FlowTemplate(rawConfig)
        } catch let problem as FlowTemplate.Problem {
            throw FlowValidationError("\(path).config" + (problem.path.isEmpty ? "" : ".\(problem.path)"), problem.message)
        }
        do {
            try validate(rawConfig, "\(path).config")
        } catch let error as FlowValidationError {
            throw error
        } catch {
            throw FlowValidationError("\(path).config", "\(error)")
        }
        var dependsOn: [String] = []
        switch fields["depends_on"] {
        case nil: break
        case .string(let one)?: dependsOn = [one]
        case .array(let many)?:
            for (index, item) in many.enumerated() {
                guard case .string(let target) = item else { throw FlowValidationError("\(path).depends_on[\(index)]", "a step or parallel group name") }
                dependsOn.append(target)
            }
        default: throw FlowValidationError("\(path).depends_on", "a step or group name, or a list of them")
        }
        var group: String?
        if let value = fields["parallel_group"] {
            guard case .string(let text) = value, FlowNames.isIdentifier(text) else { throw FlowValidationError("\(path).parallel_group", "a name (letters, digits, '_', '-')") }
            group = text
        }
        var condition: FlowExpression?
        if let value = fields["condition"] {
            guard case .string(let text) = value else { throw FlowValidationError("\(path).condition", "one {{ expression }}") }
            let pieces: [FlowTemplate.Piece]
            do {
                pieces = try FlowTemplate.pieces(text, path: "\(path).condition")
            } catch let problem as FlowTemplate.Problem {
                throw FlowValidationError(problem.path, problem.message)
            }
            guard pieces.count == 1, case .expression(let expression) = pieces[0] else {
                throw FlowValidationError("\(path).condition", "one {{ expression }} and nothing around it")
            }
            condition = expression
        }
        let retry = try parseRetry(fields["retry"], path: "\(path).retry")
        var onError = FlowErrorPolicy.fail
        switch fields["on_error"] {
        case nil, .string("fail")?: break
        case .string("continue")?: onError = .continue
        case .object(let policy)? where policy.count == 1:
            guard case .string(let target)? = policy["fallback"] else { throw FlowValidationError("\(path).on_error", "fail, continue, or {fallback: <step>}") }
            onError = .fallback(target)
        default: throw FlowValidationError("\(path).on_error", "fail, continue, or {fallback: <step>}")
        }
        var timeout: Duration?
        if let value = fields["timeout"] {
            guard let parsed = FlowDurations.parse(value), parsed > .zero, parsed <= .seconds(3600) else {
                throw FlowValidationError("\(path).timeout", "a duration up to an hour: seconds, or '500ms', '30s', '2m'")
            }
            timeout = parsed
        }
        let step = FlowStep(name: name, executor: executor, config: config, dependsOn: [], parallelGroup: group, condition: condition,
                            retry: retry, onError: onError, timeout: timeout, isFallback: false)
        return (step, dependsOn)
    }

    static func parseRetry(_ raw: JSONValue?, path: String) throws -> FlowRetry {
        guard let raw else { return .none }
        guard case .object(let fields) = raw else { throw FlowValidationError(path, "a mapping with max_attempts, backoff_strategy, delay, max_delay, on") }
        for key in fields.keys.sorted() where !["max_attempts", "backoff_strategy", "delay", "base_delay", "max_delay", "on"].contains(key) {
            throw FlowValidationError("\(path).\(key)", "unknown field (retry has max_attempts, backoff_strategy, delay, max_delay, on)")
        }
        var retry = FlowRetry.none
        retry.maxAttempts = 3
        if let value = fields["max_attempts"] {
            guard let count = value.intValue, (1...10).contains(count) else { throw FlowValidationError("\(path).max_attempts", "a whole number from 1 to 10") }
            retry.maxAttempts = count
        }
        if let value = fields["backoff_strategy"] {
            guard case .string(let text) = value, let backoff = FlowRetry.Backoff(rawValue: text) else {
                throw FlowValidationError("\(path).backoff_strategy", "exponential or fixed")
            }
            retry.backoff = backoff
        }
        for key in ["delay", "base_delay"] {
            guard let value = fields[key] else { continue }
            guard let delay = FlowDurations.parse(value), delay >= .zero, delay <= .seconds(60) else {
                throw FlowValidationError("\(path).\(key)", "a duration up to a minute: seconds, or '200ms', '1s'")
            }
            retry.delay = delay
        }
        if let value = fields["max_delay"] {
            guard let delay = FlowDurations.parse(value), delay >= .zero, delay <= .seconds(600) else {
                throw FlowValidationError("\(path).max_delay", "a duration up to ten minutes")
            }
            retry.maxDelay = delay
        }
        if let value = fields["on"] {
            guard case .array(let kinds) = value else { throw FlowValidationError("\(path).on", "a list of error kinds (timeout, upstream_error, rate_limit_error, server_error, any)") }
            for (index, kind) in kinds.enumerated() {
                guard case .string(let text) = kind, !text.isEmpty else { throw FlowValidationError("\(path).on[\(index)]", "an error kind") }
                retry.on.insert(text)
            }
        }
        return retry
    }

    static func checkRoots(_ step: FlowStep, path: String, inputs: Set<String>) throws {
        if let unknown = step.config.unknownRoots(allowed: ["inputs", "steps"]).first {
            throw FlowValidationError("\(path).config" + (unknown.path.isEmpty ? "" : ".\(unknown.path)"), "unknown name '\(unknown.root)' (templates read inputs and steps)")
        }
        if let condition = step.condition, let unknown = condition.referencedRoots.subtracting(["inputs", "steps"]).sorted().first {
            throw FlowValidationError("\(path).condition", "unknown name '\(unknown)' (conditions read inputs and steps)")
        }
    }

    /// Kahn's algorithm, keeping the written order among ready steps; a cycle names its steps.
    static func topologicalOrder(_ steps: [FlowStep]) throws -> [Int] {
        var remaining = Dictionary(uniqueKeysWithValues: steps.enumerated().map { ($0.offset, Set($0.element.dependsOn)) })
        var done: Set<String> = []
        var order: [Int] = []
        while !remaining.isEmpty {
            let ready = remaining.filter { $0.value.isSubset(of: done) }.keys.sorted()
            guard !ready.isEmpty else {
                let stuck = remaining.keys.sorted().map { steps[$0].name }
                throw FlowValidationError("steps", "cycle: \(cyclePath(in: steps, among: Set(stuck)) ?? stuck.joined(separator: ", "))")
            }
            for index in ready {
                order.append(index)
                done.insert(steps[index].name)
                remaining[index] = nil
            }
        }
        return order
    }

    /// One cycle among `stuck`, as `a → b → a`.
    static func cyclePath(in steps: [FlowStep], among stuck: Set<String>) -> String? {
        let dependencies = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0.dependsOn.filter(stuck.contains)) })
        guard var current = stuck.sorted().first else { return nil }
        var seen: [String] = []
        while !seen.contains(current) {
            seen.append(current)
            guard let next = dependencies[current]?.first else { return nil }
            current = next
        }
        let cycle = Array(seen[seen.firstIndex(of: current)!...]) + [current]
        return cycle.reversed().joined(separator: " → ")
    }

    static func ancestors(of name: String, in steps: [FlowStep]) -> Set<String> {
        let dependencies = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0.dependsOn) })
        var found: Set<String> = []
        var pending = dependencies[name] ?? []
        while let next = pending.popLast() {
            if found.insert(next).inserted { pending += dependencies[next] ?? [] }
        }
        return found
    }

    /// A YAML node as JSON, at most `budget` values (aliases repeat what they name: counted
    /// every time). Plain scalars are typed as YAML resolves them; quoted ones are strings.
    static func json(_ node: Node, budget: inout Int) throws -> JSONValue {
        budget -= 1
        guard budget >= 0 else { throw FlowValidationError("", "the flow is too large once its aliases are expanded (over \(maxNodes) values)") }
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
            if node.null != nil { return .null }
            if let flag = node.bool { return .bool(flag) }
            if let number = node.int { return .number(Double(number)) }
            if let number = node.float, number.isFinite { return .number(number) }
            return .string(scalar.string)
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for item in sequence { items.append(try json(item, budget: &budget)) }
            return .array(items)
        case .mapping(let mapping):
            var fields: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.string else { throw FlowValidationError("", "a mapping's keys are strings") }
                fields[name] = try json(value, budget: &budget)
            }
            return .object(fields)
        }
    }

    static func describe(_ error: any Error) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init) ?? "unreadable"
    }
}

public enum FlowNames {
    /// Flow names: 1–64 of letters, digits, `-`, `_`, `.`, starting with a letter or digit.
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64, first.isASCII,
              CharacterSet.alphanumerics.contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// Step, group and input names: what a template can name after `steps.` or `inputs.`.
    public static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64, first.isASCII,
              CharacterSet.letters.contains(first) || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }
    }
}

public enum FlowDurations {
    /// Seconds as a number, or text with `ms`, `s` or `m`.
    public static func parse(_ value: JSONValue) -> Duration? {
        switch value {
        case .number(let seconds) where seconds.isFinite && seconds >= 0:
            return .milliseconds(Int64((seconds * 1000).rounded()))
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            for (suffix, milliseconds) in [("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] where trimmed.hasSuffix(suffix) {
                guard let number = Double(trimmed.dropLast(suffix.count)), number.isFinite, number >= 0 else { return nil }
                return .milliseconds(Int64((number * milliseconds).rounded()))
            }
            return Double(trimmed).flatMap { $0.isFinite && $0 >= 0 ? .milliseconds(Int64(($0 * 1000).rounded())) : nil }
        default:
            return nil
        }
    }
}
