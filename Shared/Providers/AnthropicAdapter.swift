import ConduitProtocol
import Foundation
import HTTP

/// Anthropic's Messages API: system prompt beside the messages, `tool_use`/`tool_result` content
/// blocks, its own streaming events and stop reasons.
public struct AnthropicAdapter: ProviderAdapter {
    static let version = "2023-06-01"

    public init() {}

    public func makeRequest(_ request: ChatCompletionRequest, for deployment: Deployment, apiKey: String?, stream: Bool) throws -> HTTPRequest {
        var headers: [(name: String, value: String)] = [
            ("anthropic-version", Self.version), ("Content-Type", "application/json"),
            ("Accept", stream ? "text/event-stream" : "application/json"),
        ]
        if let apiKey { headers.append(("x-api-key", apiKey)) }
        return HTTPRequest(method: "POST", url: deployment.baseURL + "/v1/messages", headers: headers,
                           body: try WireJSON.encode(body(request, deployment: deployment, stream: stream)), timeout: deployment.timeouts.total)
    }

    func body(_ request: ChatCompletionRequest, deployment: Deployment, stream: Bool) throws -> JSONValue {
        var system: [String] = []
        var messages = AlternatingTurns()
        for message in request.messages {
            switch message.role {
            case "system", "developer":
                system.append(message.content?.plainText ?? "")
            case "user":
                messages.append("user", try Self.blocks(message.content))
            case "assistant":
                var blocks = try Self.blocks(message.content)
                for call in message.toolCalls ?? [] {
                    blocks.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.function.name),
                                   "input": JSONValue.parse(Array(call.function.arguments.utf8)) ?? [:]])
                }
                messages.append("assistant", blocks)
            case "tool":
                guard let id = message.toolCallID else {
                    throw ProviderError(.badRequest, message: "a tool message needs tool_call_id")
                }
                messages.append("user", [["type": "tool_result", "tool_use_id": .string(id), "content": .string(message.content?.plainText ?? "")]])
            default:
                throw ProviderError(.badRequest, message: "message role '\(message.role)' is not supported by Anthropic")
            }
        }
        var body: JSONValue = [
            "model": .string(deployment.upstreamModel),
            "max_tokens": .number(Double(request.completionTokenLimit ?? deployment.defaultMaxTokens)),
            "messages": messages.json(itemsKey: "content"),
        ]
        var fields = body.objectValue ?? [:]
        if !system.isEmpty { fields["system"] = .string(system.joined(separator: "\n\n")) }
        if stream { fields["stream"] = true }
        if let temperature = request.temperature { fields["temperature"] = .number(min(temperature, 1)) }
        if let topP = request.topP { fields["top_p"] = .number(topP) }
        switch request.stop {
        case .one(let stop): fields["stop_sequences"] = [.string(stop)]
        case .many(let stops): fields["stop_sequences"] = .array(stops.map(JSONValue.string))
        case nil: break
        }
        if let tools = request.tools, !tools.isEmpty {
            fields["tools"] = .array(tools.map { tool in
                ["name": .string(tool.function.name), "description": tool.function.description.map(JSONValue.string) ?? .null,
                 "input_schema": tool.function.parameters ?? ["type": "object", "properties": [:]]]
            })
            var choice: JSONValue = switch request.toolChoice {
            case .mode("required"): ["type": "any"]
            case .mode("none"): ["type": "none"]
            case .function(let name): ["type": "tool", "name": .string(name)]
            default: ["type": "auto"]
            }
            if request.parallelToolCalls == false, var object = choice.objectValue {
                object["disable_parallel_tool_use"] = true
                choice = .object(object)
            }
            fields["tool_choice"] = choice
        }
        if let user = request.user { fields["metadata"] = ["user_id": .string(user)] }
        body = .object(fields)
        return body
    }

    static func blocks(_ content: MessageContent?) throws -> [JSONValue] {
        switch content {
        case nil: return []
        case .text(let text): return text.isEmpty ? [] : [["type": "text", "text": .string(text)]]
        case .parts(let parts):
            return try parts.map { part in
                switch part {
                case .text(let text): return ["type": "text", "text": .string(text)]
                case .imageURL(let url, _):
                    if let (mediaType, data) = WireJSON.dataURL(url) {
                        return ["type": "image", "source": ["type": "base64", "media_type": .string(mediaType), "data": .string(data)]]
                    }
                    return ["type": "image", "source": ["type": "url", "url": .string(url)]]
                case .other(let type, _):
                    throw ProviderError(.badRequest, message: "content part type '\(type)' is not supported by Anthropic")
                }
            }
        }
    }

    static func finishReason(_ stopReason: String?) -> String? {
        switch stopReason {
        case nil: nil
        case "max_tokens": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"  // end_turn, stop_sequence, pause_turn
        }
    }

    static func usage(_ value: JSONValue?) -> ProviderUsage {
        let input = value?["input_tokens"]?.intValue ?? 0
        let cacheRead = value?["cache_read_input_tokens"]?.intValue ?? 0
        let cacheWrite = value?["cache_creation_input_tokens"]?.intValue ?? 0
        return ProviderUsage(promptTokens: input + cacheRead + cacheWrite, completionTokens: value?["output_tokens"]?.intValue ?? 0, cachedTokens: cacheRead)
    }

    public func completion(from body: [UInt8], stamp: ResponseStamp) throws -> ChatCompletion {
        let value = try WireJSON.object(body, provider: "Anthropic")
        guard let content = value["content"]?.arrayValue else {
            throw ProviderError(.malformedResponse, message: "Anthropic sent a message without content")
        }
        var text = ""
        var calls: [ToolCall] = []
        for block in content {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use":
                calls.append(ToolCall(id: block["id"]?.stringValue ?? "", function: FunctionCall(
                    name: block["name"]?.stringValue ?? "", arguments: (block["input"] ?? [:]).jsonString)))
            default: break  // thinking and other blocks have no OpenAI counterpart
            }
        }
        let message = ChatMessage(role: "assistant", content: text.isEmpty && !calls.isEmpty ? nil : .text(text), toolCalls: calls.isEmpty ? nil : calls)
        return ChatCompletion(
            id: stamp.id, created: stamp.created, model: stamp.model,
            choices: [.init(index: 0, message: message, finishReason: Self.finishReason(value["stop_reason"]?.stringValue) ?? "stop")],
            usage: Usage(Self.usage(value["usage"])))
    }

    public func streamTranslator(stamp: ResponseStamp) -> any StreamTranslator {
        Translator(stamp: stamp)
    }

    struct Translator: StreamTranslator {
        let stamp: ResponseStamp
        var isFinished = false
        var usage: ProviderUsage?
        /// Content block index → OpenAI tool call index.
        private var toolIndexes: [Int: Int] = [:]

        init(stamp: ResponseStamp) { self.stamp = stamp }

        mutating func translate(_ event: SSEEvent) throws -> [ChatCompletionChunk] {
            let value = try WireJSON.object(event.data, provider: "Anthropic")
            switch value["type"]?.stringValue ?? event.event {
            case "message_start":
                usage = AnthropicAdapter.usage(value["message"]?["usage"])
                return [stamp.chunk(delta: .init(role: "assistant", content: ""))]
            case "content_block_start":
                guard let block = value["content_block"], block["type"]?.stringValue == "tool_use", let index = value["index"]?.intValue else {
                    if let text = value["content_block"]?["text"]?.stringValue, !text.isEmpty {
                        return [stamp.chunk(delta: .init(content: text))]
                    }
                    return []
                }
                let toolIndex = toolIndexes.count
                toolIndexes[index] = toolIndex
                return [stamp.chunk(delta: .init(toolCalls: [.init(
                    index: toolIndex, id: block["id"]?.stringValue, type: "function",
                    function: .init(name: block["name"]?.stringValue, arguments: "")
                )]))]
            case "content_block_delta":
                let delta = value["delta"]
                switch delta?["type"]?.stringValue {
                case "text_delta":
                    return [stamp.chunk(delta: .init(content: delta?["text"]?.stringValue ?? ""))]
                case "input_json_delta":
                    guard let index = value["index"]?.intValue, let toolIndex = toolIndexes[index] else { return [] }
                    return [stamp.chunk(delta: .init(toolCalls: [.init(index: toolIndex, function: .init(arguments: delta?["partial_json"]?.stringValue ?? ""))]))]
                default:
                    return []
                }
            case "message_delta":
                if let output = value["usage"]?["output_tokens"]?.intValue {
                    var current = usage ?? ProviderUsage(promptTokens: 0, completionTokens: 0)
                    current.completionTokens = output
                    if let input = value["usage"]?["input_tokens"]?.intValue, current.promptTokens == 0 { current.promptTokens = input }
                    usage = current
                }
                guard let reason = AnthropicAdapter.finishReason(value["delta"]?["stop_reason"]?.stringValue) else { return [] }
                return [stamp.chunk(delta: .init(), finishReason: reason)]
            case "message_stop":
                isFinished = true
                return []
            case "error":
                let type = value["error"]?["type"]?.stringValue
                let message = value["error"]?["message"]?.stringValue ?? "Anthropic reported an error mid-stream"
                throw ProviderError(type == "rate_limit_error" ? .rateLimited : .serverError, message: message)
            default:
                return []  // ping, content_block_stop, and event types added later
            }
        }
    }
}
