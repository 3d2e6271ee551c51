import ConduitKit
import ConduitProtocol
import Flows
import Foundation
import HTTPTypes
import Hummingbird
import MCPTools
import Providers

/// A tool an agent may call besides the MCP servers' ones: a flow step executor behind a
/// function the model sees (`search_documents` is `retrieve`, `run_flow` is `flow`,
/// `fetch_url` is `http`), run with the agent's own step context, so it is the caller's.
struct BuiltInTool: Sendable {
    var name: String
    var description: String
    var parameters: JSONValue
    var executor: any FlowExecutor<FlowCaller>
    /// The executor's config from the model's arguments.
    var config: @Sendable (JSONValue) -> JSONValue = { $0 }

    static func standard(retrieve: any FlowExecutor<FlowCaller>, flow: any FlowExecutor<FlowCaller>, http: (any FlowExecutor<FlowCaller>)?) -> [BuiltInTool] {
        var tools = [
            BuiltInTool(
                name: "search_documents", description: "Searches a collection of the caller's documents; returns the best passages with their document ids.",
                parameters: ["type": "object", "required": ["collection", "query"], "properties": [
                    "collection": ["type": "string", "description": "The collection to search"],
                    "query": ["type": "string", "description": "What to look for"],
                    "top_k": ["type": "integer", "description": "How many passages (default 5)"],
                ]], executor: retrieve),
            BuiltInTool(
                name: "run_flow", description: "Runs one of the caller's flows (or a shipped one) with its inputs; returns its output.",
                parameters: ["type": "object", "required": ["name"], "properties": [
                    "name": ["type": "string", "description": "The flow's name (GET /v1/flows)"],
                    "inputs": ["type": "object", "description": "The flow's inputs"],
                ]], executor: flow),
        ]
        if let http {
            tools.append(BuiltInTool(
                name: "fetch_url", description: "Fetches a URL on a host the operator allows; returns its status and body.",
                parameters: ["type": "object", "required": ["url"], "properties": ["url": ["type": "string", "description": "An http(s) URL"]]],
                executor: http, config: { ["url": $0["url"] ?? .null, "method": "GET"] }))
        }
        return tools
    }
}

/// The operator's bounds on every agent (`CONDUIT_AGENT_*`); a run may ask for less.
struct AgentLimits: Sendable {
    var maxSteps = 8
    var maxSeconds = 120.0
    var maxParallelTools = 8
    /// A tool's result is cut to this many characters before the model sees it.
    var maxResultCharacters = 16_000
}

/// `agent`: a tool-calling loop. The model gets the conversation and the tools' schemas; each
/// tool call it proposes is run (the calls of one turn at once, up to `maxParallelTools`), its
/// result goes back as a `tool` message, until the model answers without calling a tool, or a
/// limit ends it (`max_steps` model turns, `max_seconds`, `max_cost_usd`). A tool that fails
/// gives the model the error as its result (it may try otherwise); a limit fails the step with
/// `agent_limit`. Config: `model`, `input`, `system`, `messages`, `tools` (names; empty: all),
/// `max_steps`, `max_seconds`, `max_cost_usd`. Output: `{"content", "finish_reason", "steps":
/// [model turns and tool calls, each with its timing], "usage", "cost_usd"}`.
struct AgentStepExecutor: FlowExecutor {
    let name = "agent"
    let chat: ChatController
    let builtIns: [BuiltInTool]
    let toolbox: MCPToolbox?
    let limits: AgentLimits

    func validate(config: JSONValue, path: String) throws {
        guard case .string? = config["model"] else { throw FlowValidationError("\(path).model", "required: a model name") }
        guard config["input"] != nil || config["messages"] != nil else { throw FlowValidationError("\(path).input", "required: the question (or messages)") }
    }

    /// Every tool an agent could be given: the built-ins, then the MCP servers' (`server__tool`).
    func catalog() async -> [FunctionDefinition] {
        var functions = builtIns.map { FunctionDefinition(name: $0.name, description: $0.description, parameters: $0.parameters) }
        for tool in await toolbox?.tools() ?? [] {
            functions.append(FunctionDefinition(name: tool.qualifiedName, description: tool.description, parameters: tool.inputSchema))
        }
        return functions
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let model = config["model"]?.stringValue, !model.isEmpty else { throw FlowStepError.invalid("'model' is required") }
        let maxSteps = min(limits.maxSteps, max(1, config["max_steps"]?.intValue ?? limits.maxSteps))
        let maxSeconds = min(limits.maxSeconds, max(1, config["max_seconds"]?.doubleValue ?? limits.maxSeconds))
        let maxCost = config["max_cost_usd"]?.doubleValue ?? 0
        var messages: [ChatMessage] = []
        if let system = config["system"]?.stringValue, !system.isEmpty { messages.append(ChatMessage(role: "system", content: .text(system))) }
        if case .array(let earlier)? = config["messages"], !earlier.isEmpty {
            do {
                messages += try JSONDecoder().decode([ChatMessage].self, from: Data(JSONValue.array(earlier).jsonString.utf8))
            } catch {
                throw FlowStepError.invalid("'messages' are not chat messages")
            }
        }
        if let input = config["input"]?.stringValue, !input.isEmpty { messages.append(ChatMessage(role: "user", content: .text(input))) }
        guard !messages.isEmpty else { throw FlowStepError.invalid("'input' (or 'messages') is required") }

        let all = await catalog()
        let wanted = Set(config["tools"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let offered = wanted.isEmpty ? all : all.filter { wanted.contains($0.name) }
        if let unknown = wanted.subtracting(all.map(\.name)).sorted().first {
            throw FlowStepError.invalid("no tool '\(unknown)' (GET /v1/agents/tools lists them)")
        }

        let deadline = ContinuousClock.now + .milliseconds(Int(maxSeconds * 1000))
        var trace: [JSONValue] = []
        var cost = 0.0
        var promptTokens = 0
        var completionTokens = 0
        for turn in 1...maxSteps {
            guard ContinuousClock.now < deadline else { throw Self.limit("the agent ran out of its \(maxSeconds) s", trace) }
            var request = ChatCompletionRequest(model: model, messages: messages)
            request.tools = offered.isEmpty ? nil : offered.map { Tool(function: $0) }
            let turnRequest = request
            let started = Date()
            let completion: ChatCompletion
            let turnCost: Double
            (completion, turnCost) = try await Self.within(deadline, "the agent ran out of its \(maxSeconds) s", trace) {
                try await ChatStepExecutor.complete(turnRequest, chat: chat, context: context)
            }
            cost += turnCost
            promptTokens += completion.usage?.promptTokens ?? 0
            completionTokens += completion.usage?.completionTokens ?? 0
            let message = completion.choices.first?.message ?? ChatMessage(role: "assistant", content: .text(""))
            let calls = message.toolCalls ?? []
            trace.append([
                "type": "model", "turn": .number(Double(turn)), "model": .string(completion.model),
                "content": message.content.map { .string($0.plainText) } ?? .null,
                "tool_calls": .array(calls.map { ["id": .string($0.id), "name": .string($0.function.name), "arguments": .string($0.function.arguments)] }),
                "usage": ["prompt_tokens": .number(Double(completion.usage?.promptTokens ?? 0)), "completion_tokens": .number(Double(completion.usage?.completionTokens ?? 0))],
                "cost_usd": .number(turnCost), "started_at": .string(Self.time(started)), "ended_at": .string(Self.time(Date())),
            ])
            if calls.isEmpty {
                return FlowStepOutput([
                    "content": .string(message.content?.plainText ?? ""), "finish_reason": completion.choices.first?.finishReason.map(JSONValue.string) ?? .null,
                    "steps": .array(trace), "cost_usd": .number(cost),
                    "usage": ["prompt_tokens": .number(Double(promptTokens)), "completion_tokens": .number(Double(completionTokens)),
                              "total_tokens": .number(Double(promptTokens + completionTokens))],
                ], costUSD: cost)
            }
            if maxCost > 0, cost >= maxCost { throw Self.limit("the agent spent its \(maxCost) USD", trace) }
            messages.append(ChatMessage(role: "assistant", content: nil, toolCalls: calls))
            let results = try await Self.within(deadline, "the agent ran out of its \(maxSeconds) s", trace) {
                try await runTools(calls, offered: Set(offered.map(\.name)), context: context)
            }
            for (call, result) in zip(calls, results) {
                trace.append(result.trace)
                messages.append(ChatMessage(role: "tool", content: .text(result.text), toolCallID: call.id))
                cost += result.cost
            }
        }
        throw Self.limit("the agent took its \(maxSteps) model turns without an answer", trace)
    }

    struct ToolOutcome: Sendable {
        var text: String
        var cost: Double
        var trace: JSONValue
    }

    /// The calls of one turn, at most `maxParallelTools` at once; results in the calls' order.
    func runTools(_ calls: [ToolCall], offered: Set<String>, context: FlowStepContext<FlowCaller>) async throws -> [ToolOutcome] {
        try await withThrowingTaskGroup(of: (Int, ToolOutcome).self) { group in
            var results = [ToolOutcome?](repeating: nil, count: calls.count)
            var next = 0
            func startNext() {
                guard next < calls.count else { return }
                let index = next
                next += 1
                group.addTask { (index, await runTool(calls[index], offered: offered, context: context)) }
            }
            for _ in 0..<min(limits.maxParallelTools, calls.count) { startNext() }
            while let (index, outcome) = try await group.next() {
                results[index] = outcome
                startNext()
            }
            return results.compactMap { $0 }
        }
    }

    func runTool(_ call: ToolCall, offered: Set<String>, context: FlowStepContext<FlowCaller>) async -> ToolOutcome {
        let started = Date()
        let clock = ContinuousClock.now
        var text: String
        var failed = false
        var cost = 0.0
        let arguments = JSONValue.parse(Array(call.function.arguments.utf8)) ?? (call.function.arguments.isEmpty ? .object([:]) : .null)
        if arguments == .null || arguments.objectValue == nil {
            text = "error: the arguments are not a JSON object"
            failed = true
        } else if !offered.contains(call.function.name) {
            text = "error: no tool '\(call.function.name)' is available"
            failed = true
        } else if let builtIn = builtIns.first(where: { $0.name == call.function.name }) {
            do {
                let output = try await builtIn.executor.run(config: builtIn.config(arguments), context: context)
                text = output.value.stringValue ?? output.value.jsonString
                cost = output.costUSD
            } catch {
                text = "error: \(error)"
                failed = true
            }
        } else if let toolbox {
            do {
                let result = try await toolbox.call(call.function.name, arguments: arguments)
                text = result.text
                failed = result.isError
            } catch {
                text = "error: \(error)"
                failed = true
            }
        } else {
            text = "error: no tool '\(call.function.name)' is available"
            failed = true
        }
        if text.count > limits.maxResultCharacters { text = String(text.prefix(limits.maxResultCharacters)) + "… (cut)" }
        let elapsed = ContinuousClock.now - clock
        return ToolOutcome(text: text, cost: cost, trace: [
            "type": "tool", "id": .string(call.id), "name": .string(call.function.name), "arguments": arguments == .null ? .string(call.function.arguments) : arguments,
            "result": .string(text), "status": failed ? "failed" : "succeeded", "cost_usd": .number(cost),
            "duration_ms": .number(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15),
            "started_at": .string(Self.time(started)), "ended_at": .string(Self.time(Date())),
        ])
    }

    static func limit(_ message: String, _ trace: [JSONValue]) -> FlowStepError {
        FlowStepError(kind: "agent_limit", message: "\(message) (\(trace.count) steps)")
    }

    /// `body`, failed with `agent_limit` when the deadline passes first.
    static func within<T: Sendable>(_ deadline: ContinuousClock.Instant, _ message: String, _ trace: [JSONValue], _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw limit(message, trace) }
            return value
        }
    }

    static func time(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// `tool`: one call of an MCP server's tool. Config: `name` (`server__tool`), `arguments` (an
/// object). Output: the tool's result (parsed when it is JSON); a result the server marks as an
/// error fails the step (`tool_error`).
struct ToolStepExecutor: FlowExecutor {
    let name = "tool"
    let toolbox: MCPToolbox

    func validate(config: JSONValue, path: String) throws {
        guard case .string(let tool)? = config["name"], tool.contains(MCPToolbox.separator) else {
            throw FlowValidationError("\(path).name", "required: a tool as server\(MCPToolbox.separator)tool")
        }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let tool = config["name"]?.stringValue else { throw FlowStepError.invalid("'name' is a string") }
        let result: MCPToolResult
        do {
            result = try await toolbox.call(tool, arguments: config["arguments"] ?? .object([:]))
        } catch let error as MCPToolError {
            throw FlowStepError(kind: error.kind == .timeout ? "timeout" : error.kind == .unavailable ? "upstream_error" : "invalid_request_error", message: error.message)
        }
        guard !result.isError else { throw FlowStepError(kind: "tool_error", message: result.text) }
        return FlowStepOutput(JSONValue.parse(Array(result.text.utf8)) ?? .string(result.text))
    }
}
