import ConduitProtocol
import Foundation
import HTTP
import Providers
import Testing

/// Request and response translations of each adapter: system prompts, tools and tool results,
/// images, stop reasons and usage, with bodies shaped like the providers' documentation.
@Suite struct AdapterTranslationTests {
    static let stamp = ResponseStamp(id: "chatcmpl-test", created: 1, model: "public")

    static func conversation() -> ChatCompletionRequest {
        var request = ChatCompletionRequest(model: "public", messages: [
            .system("You are terse."),
            ChatMessage(role: "user", content: .parts([.text("What is in this image, and the weather in Paris?"), .imageURL(url: "data:image/png;base64,iVBORw0KGgo=", detail: nil)])),
            ChatMessage(role: "assistant", content: nil, toolCalls: [ToolCall(id: "call_1", function: FunctionCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))]),
            ChatMessage(role: "tool", content: .text(#"{"celsius":21}"#), toolCallID: "call_1"),
        ])
        request.tools = [Tool(function: FunctionDefinition(name: "get_weather", description: "Weather by city", parameters: ["type": "object", "properties": ["city": ["type": "string"]]]))]
        request.toolChoice = .mode("required")
        request.stop = .one("END")
        request.temperature = 0.2
        return request
    }

    static func body(_ request: HTTPRequest) throws -> JSONValue {
        try #require(JSONValue.parse(request.body ?? []))
    }

    static func deployment(_ kind: ProviderKind) -> Deployment {
        Deployment(id: "d", provider: kind, upstreamModel: "up-model", baseURL: "https://example.test", apiVersion: "2024-10-21", defaultMaxTokens: 321)
    }

    static func events(_ frames: [String]) -> [SSEEvent] {
        var parser = SSEParser()
        return frames.flatMap { parser.feed(Array($0.utf8)) }
    }

    @Test func openAIRequestKeepsTheBodyAndAsksForUsageWhenStreaming() throws {
        let request = try OpenAICompatibleAdapter().makeRequest(Self.conversation(), for: Self.deployment(.openAI), apiKey: "sk-1", stream: true)
        #expect(request.url == "https://example.test/chat/completions")
        #expect(request.headers.contains { $0.name == "Authorization" && $0.value == "Bearer sk-1" })
        let body = try Self.body(request)
        #expect(body["model"] == "up-model")
        #expect(body["stream"] == true)
        #expect(body["stream_options"]?["include_usage"] == true)
        #expect(body["messages"]?.arrayValue?.count == 4)
        #expect(body["tool_choice"] == "required")
    }

    @Test func azureAddressesTheDeploymentWithApiVersionAndApiKey() throws {
        let request = try AzureOpenAIAdapter().makeRequest(Self.conversation(), for: Self.deployment(.azureOpenAI), apiKey: "az-1", stream: false)
        #expect(request.url == "https://example.test/openai/deployments/up-model/chat/completions?api-version=2024-10-21")
        #expect(request.headers.contains { $0.name == "api-key" && $0.value == "az-1" })
        #expect(!request.headers.contains { $0.name == "Authorization" })
    }

    @Test func openAIStreamedToolCallArgumentsArriveInPieces() throws {
        let head = #""id":"c","object":"chat.completion.chunk","created":1,"model":"m""#
        var translator = OpenAICompatibleAdapter().streamTranslator(stamp: Self.stamp)
        let chunks = try Self.events([
            #"data: {\#(head),"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"# + "\n\n",
            #"data: {\#(head),"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]},"finish_reason":null}]}"# + "\n\n",
            #"data: {\#(head),"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]},"finish_reason":null}]}"# + "\n\n",
            #"data: {\#(head),"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"# + "\n\n",
            "data: [DONE]\n\n",
        ]).flatMap { try translator.translate($0) }
        #expect(translator.isFinished)
        #expect(chunks.allSatisfy { $0.id == "chatcmpl-test" && $0.model == "public" })
        let calls = chunks.flatMap { $0.choices.first?.delta.toolCalls ?? [] }
        #expect(calls.first?.id == "call_9")
        #expect(calls.first?.function?.name == "get_weather")
        #expect(calls.compactMap(\.function?.arguments).joined() == #"{"city":"Paris"}"#)
        #expect(chunks.last?.choices.first?.finishReason == "tool_calls")
    }

    @Test func anthropicRequestMovesSystemOutAndToolResultsIntoUserTurns() throws {
        let request = try AnthropicAdapter().makeRequest(Self.conversation(), for: Self.deployment(.anthropic), apiKey: "ant-1", stream: false)
        #expect(request.url == "https://example.test/v1/messages")
        #expect(request.headers.contains { $0.name == "x-api-key" && $0.value == "ant-1" })
        #expect(request.headers.contains { $0.name == "anthropic-version" })
        let body = try Self.body(request)
        #expect(body["system"] == "You are terse.")
        #expect(body["max_tokens"] == 321)
        #expect(body["stop_sequences"] == ["END"])
        #expect(body["tool_choice"] == ["type": "any"])
        #expect(body["tools"]?.arrayValue?.first?["input_schema"]?["type"] == "object")
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.map { $0["role"] } == ["user", "assistant", "user"])
        #expect(messages[0]["content"]?.arrayValue?[1]["source"] == ["type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="])
        #expect(messages[1]["content"]?.arrayValue?.first == ["type": "tool_use", "id": "call_1", "name": "get_weather", "input": ["city": "Paris"]])
        #expect(messages[2]["content"]?.arrayValue?.first == ["type": "tool_result", "tool_use_id": "call_1", "content": #"{"celsius":21}"#])
    }

    @Test func anthropicToolUseBecomesToolCallsBothWays() throws {
        let body = #"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":30,"output_tokens":12}}"#
        let completion = try AnthropicAdapter().completion(from: Array(body.utf8), stamp: Self.stamp)
        let choice = try #require(completion.choices.first)
        #expect(choice.finishReason == "tool_calls")
        #expect(choice.message.content?.plainText == "Checking.")
        #expect(choice.message.toolCalls?.first?.id == "toolu_01")
        #expect(JSONValue.parse(Array(choice.message.toolCalls?.first?.function.arguments.utf8 ?? "".utf8)) == ["city": "Paris"])

        var translator = AnthropicAdapter().streamTranslator(stamp: Self.stamp)
        let chunks = try Self.events([
            "event: message_start\n" + #"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","usage":{"input_tokens":30,"output_tokens":1}}}"# + "\n\n",
            "event: content_block_start\n" + #"data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}"# + "\n\n",
            "event: content_block_delta\n" + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}"# + "\n\n",
            "event: content_block_delta\n" + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"# + "\n\n",
            "event: message_delta\n" + #"data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":12}}"# + "\n\n",
            "event: message_stop\n" + #"data: {"type":"message_stop"}"# + "\n\n",
        ]).flatMap { try translator.translate($0) }
        let calls = chunks.flatMap { $0.choices.first?.delta.toolCalls ?? [] }
        #expect(calls.first?.id == "toolu_01")
        #expect(calls.allSatisfy { $0.index == 0 })
        #expect(calls.compactMap(\.function?.arguments).joined() == #"{"city": "Paris"}"#)
        #expect(chunks.last?.choices.first?.finishReason == "tool_calls")
        #expect(translator.usage == ProviderUsage(promptTokens: 30, completionTokens: 12))
        #expect(translator.isFinished)
    }

    @Test func anthropicStopReasonsMapToOpenAIFinishReasons() throws {
        for (stop, finish) in [("end_turn", "stop"), ("max_tokens", "length"), ("stop_sequence", "stop"), ("tool_use", "tool_calls"), ("refusal", "content_filter")] {
            let body = #"{"content":[{"type":"text","text":"x"}],"stop_reason":"\#(stop)","usage":{"input_tokens":1,"output_tokens":1}}"#
            #expect(try AnthropicAdapter().completion(from: Array(body.utf8), stamp: Self.stamp).choices.first?.finishReason == finish)
        }
    }

    @Test func anthropicErrorEventMidStreamThrows() throws {
        var translator = AnthropicAdapter().streamTranslator(stamp: Self.stamp)
        let events = Self.events(["event: error\n" + #"data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"# + "\n\n"])
        #expect(throws: ProviderError.self) { try translator.translate(events[0]) }
    }

    @Test func geminiRequestUsesContentsSystemInstructionAndFunctionResponsesByName() throws {
        let request = try GeminiAdapter().makeRequest(Self.conversation(), for: Self.deployment(.gemini), apiKey: "g-1", stream: true)
        #expect(request.url == "https://example.test/v1beta/models/up-model:streamGenerateContent?alt=sse")
        #expect(request.headers.contains { $0.name == "x-goog-api-key" && $0.value == "g-1" })
        let body = try Self.body(request)
        #expect(body["systemInstruction"] == ["parts": [["text": "You are terse."]]])
        #expect(body["generationConfig"]?["stopSequences"] == ["END"])
        #expect(body["toolConfig"] == ["functionCallingConfig": ["mode": "ANY"]])
        let contents = try #require(body["contents"]?.arrayValue)
        #expect(contents.map { $0["role"] } == ["user", "model", "user"])
        #expect(contents[0]["parts"]?.arrayValue?[1] == ["inlineData": ["mimeType": "image/png", "data": "iVBORw0KGgo="]])
        #expect(contents[1]["parts"]?.arrayValue?.first == ["functionCall": ["name": "get_weather", "args": ["city": "Paris"]]])
        #expect(contents[2]["parts"]?.arrayValue?.first == ["functionResponse": ["name": "get_weather", "response": ["celsius": 21]]])
    }

    @Test func geminiFunctionCallsAndSafetyVerdicts() throws {
        let call = #"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"thoughtsTokenCount":7,"totalTokenCount":32}}"#
        let completion = try GeminiAdapter().completion(from: Array(call.utf8), stamp: Self.stamp)
        #expect(completion.choices.first?.finishReason == "tool_calls")
        #expect(completion.choices.first?.message.toolCalls?.first?.function.name == "get_weather")
        #expect(completion.usage?.completionTokens == 12)
        #expect(completion.usage?.completionTokensDetails?.reasoningTokens == 7)

        let filtered = #"{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}]}"#
        #expect(try GeminiAdapter().completion(from: Array(filtered.utf8), stamp: Self.stamp).choices.first?.finishReason == "content_filter")

        let blocked = #"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":9}}"#
        #expect {
            try GeminiAdapter().completion(from: Array(blocked.utf8), stamp: Self.stamp)
        } throws: { ($0 as? ProviderError)?.code == .contentFiltered }
    }

    @Test func geminiStreamedFunctionCallIsOneDelta() throws {
        var translator = GeminiAdapter().streamTranslator(stamp: Self.stamp)
        let chunks = try Self.events([
            #"data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"totalTokenCount":25}}"# + "\r\n\r\n",
        ]).flatMap { try translator.translate($0) }
        let calls = chunks.flatMap { $0.choices.first?.delta.toolCalls ?? [] }
        #expect(calls.count == 1)
        #expect(calls.first?.function?.name == "get_weather")
        #expect(JSONValue.parse(Array(calls.first?.function?.arguments?.utf8 ?? "".utf8)) == ["city": "Paris"])
        #expect(chunks.last?.choices.first?.finishReason == "tool_calls")
        #expect(translator.isFinished)
    }

    @Test func aToolMessageGeminiCannotNameIsRefused() throws {
        let request = ChatCompletionRequest(model: "m", messages: [.user("hi"), ChatMessage(role: "tool", content: .text("{}"), toolCallID: "call_unknown")])
        #expect(throws: ProviderError.self) { try GeminiAdapter().makeRequest(request, for: Self.deployment(.gemini), apiKey: nil, stream: false) }
    }
}
