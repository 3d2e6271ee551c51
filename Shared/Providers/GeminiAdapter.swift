import ConduitProtocol
import Foundation
import HTTP

/// Google's Gemini API (`generateContent` / `streamGenerateContent?alt=sse`): `contents` with
/// `user`/`model` roles, `functionCall`/`functionResponse` parts, safety verdicts.
public struct GeminiAdapter: ProviderAdapter {
    public init() {}

    public func makeRequest(_ request: ChatCompletionRequest, for deployment: Deployment, apiKey: String?, stream: Bool) throws -> HTTPRequest {
        let model = deployment.upstreamModel.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? deployment.upstreamModel
        let url = deployment.baseURL + "/v1beta/models/\(model)" + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent")
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        if let apiKey { headers.append(("x-goog-api-key", apiKey)) }
        return HTTPRequest(method: "POST", url: url, headers: headers, body: try WireJSON.encode(body(request, deployment: deployment)), timeout: deployment.timeouts.total)
    }

    func body(_ request: ChatCompletionRequest, deployment: Deployment) throws -> JSONValue {
        var system: [String] = []
        var contents = AlternatingTurns()
        var toolNames: [String: String] = [:]
        for message in request.messages {
            switch message.role {
            case "system", "developer":
                system.append(message.content?.plainText ?? "")
            case "user":
                contents.append("user", try Self.parts(message.content))
            case "assistant":
                var parts = try Self.parts(message.content)
                for call in message.toolCalls ?? [] {
                    toolNames[call.id] = call.function.name
                    parts.append(["functionCall": ["name": .string(call.function.name), "args": JSONValue.parse(Array(call.function.arguments.utf8)) ?? [:]]])
                }
                contents.append("model", parts)
            case "tool":
                // Gemini matches a response to its call by function name; OpenAI clients send the call id.
                guard let id = message.toolCallID, let name = toolNames[id] else {
                    throw ProviderError(.badRequest, message: "a tool message must answer a tool call of an earlier assistant message (tool_call_id)")
                }
                let text = message.content?.plainText ?? ""
                let response: JSONValue = JSONValue.parse(Array(text.utf8)).flatMap { $0.objectValue != nil ? $0 : nil } ?? ["content": .string(text)]
                contents.append("user", [["functionResponse": ["name": .string(name), "response": response]]])
            default:
                throw ProviderError(.badRequest, message: "message role '\(message.role)' is not supported by Gemini")
            }
        }
        var fields: [String: JSONValue] = [
            "contents": contents.json(itemsKey: "parts"),
        ]
        if !system.isEmpty { fields["systemInstruction"] = ["parts": [["text": .string(system.joined(separator: "\n\n"))]]] }
        var generation: [String: JSONValue] = [:]
        if let temperature = request.temperature { generation["temperature"] = .number(temperature) }
        if let topP = request.topP { generation["topP"] = .number(topP) }
        if let limit = request.completionTokenLimit { generation["maxOutputTokens"] = .number(Double(limit)) }
        if let n = request.n { generation["candidateCount"] = .number(Double(n)) }
        if let seed = request.seed { generation["seed"] = .number(Double(seed)) }
        switch request.stop {
        case .one(let stop): generation["stopSequences"] = [.string(stop)]
        case .many(let stops): generation["stopSequences"] = .array(stops.map(JSONValue.string))
        case nil: break
        }
        if let format = request.responseFormat, format.type != "text" {
            generation["responseMimeType"] = "application/json"
        }
        if !generation.isEmpty { fields["generationConfig"] = .object(generation) }
        if let tools = request.tools, !tools.isEmpty {
            fields["tools"] = [["functionDeclarations": .array(tools.map { tool in
                ["name": .string(tool.function.name), "description": tool.function.description.map(JSONValue.string) ?? .null,
                 "parameters": tool.function.parameters ?? .null]
            })]]
            let config: JSONValue = switch request.toolChoice {
            case .mode("required"): ["mode": "ANY"]
            case .mode("none"): ["mode": "NONE"]
            case .function(let name): ["mode": "ANY", "allowedFunctionNames": [.string(name)]]
            default: ["mode": "AUTO"]
            }
            fields["toolConfig"] = ["functionCallingConfig": config]
        }
        return .object(fields)
    }

    static func parts(_ content: MessageContent?) throws -> [JSONValue] {
        switch content {
        case nil: return []
        case .text(let text): return text.isEmpty ? [] : [["text": .string(text)]]
        case .parts(let parts):
            return try parts.map { part in
                switch part {
                case .text(let text): return ["text": .string(text)]
                case .imageURL(let url, _):
                    if let (mediaType, data) = WireJSON.dataURL(url) {
                        return ["inlineData": ["mimeType": .string(mediaType), "data": .string(data)]]
                    }
                    return ["fileData": ["mimeType": .string(Self.mimeType(of: url)), "fileUri": .string(url)]]
                case .other(let type, _):
                    throw ProviderError(.badRequest, message: "content part type '\(type)' is not supported by Gemini")
                }
            }
        }
    }

    static func mimeType(of url: String) -> String {
        let lower = url.lowercased()
        if lower.hasSuffix(".png") { return "image/png" }
        if lower.hasSuffix(".webp") { return "image/webp" }
        if lower.hasSuffix(".gif") { return "image/gif" }
        return "image/jpeg"
    }

    static func finishReason(_ reason: String?, hasToolCalls: Bool) -> String? {
        switch reason {
        case nil, "FINISH_REASON_UNSPECIFIED": nil
        case "MAX_TOKENS": "length"
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": "content_filter"
        default: hasToolCalls ? "tool_calls" : "stop"
        }
    }

    static func usage(_ value: JSONValue?) -> ProviderUsage? {
        guard let value else { return nil }
        let thoughts = value["thoughtsTokenCount"]?.intValue ?? 0
        return ProviderUsage(
            promptTokens: value["promptTokenCount"]?.intValue ?? 0,
            completionTokens: (value["candidatesTokenCount"]?.intValue ?? 0) + thoughts,
            cachedTokens: value["cachedContentTokenCount"]?.intValue ?? 0, reasoningTokens: thoughts)
    }

    /// A prompt Gemini refused to answer at all.
    static func checkBlocked(_ value: JSONValue) throws {
        if let reason = value["promptFeedback"]?["blockReason"]?.stringValue {
            throw ProviderError(.contentFiltered, status: 400, message: "Gemini blocked the prompt (\(reason))")
        }
    }

    static func callID() -> String {
        "call_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }

    public func completion(from body: [UInt8], stamp: ResponseStamp) throws -> ChatCompletion {
        let value = try WireJSON.object(body, provider: "Gemini")
        try Self.checkBlocked(value)
        guard let candidates = value["candidates"]?.arrayValue, !candidates.isEmpty else {
            throw ProviderError(.malformedResponse, message: "Gemini sent no candidates")
        }
        let choices = candidates.enumerated().map { position, candidate -> ChatCompletion.Choice in
            var text = ""
            var calls: [ToolCall] = []
            for part in candidate["content"]?["parts"]?.arrayValue ?? [] where part["thought"]?.boolValue != true {
                if let piece = part["text"]?.stringValue { text += piece }
                if let call = part["functionCall"] {
                    calls.append(ToolCall(id: call["id"]?.stringValue ?? Self.callID(), function: FunctionCall(
                        name: call["name"]?.stringValue ?? "", arguments: (call["args"] ?? [:]).jsonString)))
                }
            }
            let message = ChatMessage(role: "assistant", content: text.isEmpty && !calls.isEmpty ? nil : .text(text), toolCalls: calls.isEmpty ? nil : calls)
            return .init(index: candidate["index"]?.intValue ?? position, message: message,
                         finishReason: Self.finishReason(candidate["finishReason"]?.stringValue, hasToolCalls: !calls.isEmpty) ?? "stop")
        }
        return ChatCompletion(id: stamp.id, created: stamp.created, model: stamp.model, choices: choices,
                              usage: Self.usage(value["usageMetadata"]).map(Usage.init))
    }

    public func streamTranslator(stamp: ResponseStamp) -> any StreamTranslator {
        Translator(stamp: stamp)
    }

    struct Translator: StreamTranslator {
        let stamp: ResponseStamp
        var isFinished = false
        var usage: ProviderUsage?
        private var started = false
        private var toolCalls = 0

        init(stamp: ResponseStamp) { self.stamp = stamp }

        mutating func translate(_ event: SSEEvent) throws -> [ChatCompletionChunk] {
            let value = try WireJSON.object(event.data, provider: "Gemini")
            if let error = value["error"] {
                throw ProviderError(.serverError, message: error["message"]?.stringValue ?? "Gemini reported an error mid-stream")
            }
            try GeminiAdapter.checkBlocked(value)
            if let reported = GeminiAdapter.usage(value["usageMetadata"]) { usage = reported }
            var chunks: [ChatCompletionChunk] = []
            if !started {
                started = true
                chunks.append(stamp.chunk(delta: .init(role: "assistant", content: "")))
            }
            guard let candidate = value["candidates"]?.arrayValue?.first else { return chunks }
            for part in candidate["content"]?["parts"]?.arrayValue ?? [] where part["thought"]?.boolValue != true {
                if let text = part["text"]?.stringValue, !text.isEmpty {
                    chunks.append(stamp.chunk(delta: .init(content: text)))
                }
                if let call = part["functionCall"] {
                    // Gemini sends each call whole; OpenAI clients read it as one delta.
                    chunks.append(stamp.chunk(delta: .init(toolCalls: [.init(
                        index: toolCalls, id: call["id"]?.stringValue ?? GeminiAdapter.callID(), type: "function",
                        function: .init(name: call["name"]?.stringValue, arguments: (call["args"] ?? [:]).jsonString))])))
                    toolCalls += 1
                }
            }
            if let reason = GeminiAdapter.finishReason(candidate["finishReason"]?.stringValue, hasToolCalls: toolCalls > 0) {
                chunks.append(stamp.chunk(delta: .init(), finishReason: reason))
                isFinished = true
            }
            return chunks
        }
    }
}
