import ConduitProtocol
import Foundation
import Testing

/// Request bodies as the official OpenAI Python SDK sends them, captured by
/// deploy/dev/capture-openai-fixtures.py into Fixtures/.
struct OpenAISDKFixtureTests {
    static func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return try Data(contentsOf: url)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        try JSONDecoder().decode(type, from: try fixture(name))
    }

    @Test func basicChat() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_basic")
        #expect(request.model == "gpt-4o-mini")
        #expect(request.messages == [.user("Hello!")])
        #expect(request.stream == nil)
    }

    @Test func everySamplingParameter() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_all_parameters")
        #expect(request.messages.map(\.role) == ["developer", "user"])
        #expect(request.messages[1].name == "ada")
        #expect(request.temperature == 0.2)
        #expect(request.topP == 0.9)
        #expect(request.n == 2)
        #expect(request.stop == .many(["\n\n", "END"]))
        #expect(request.maxTokens == 64)
        #expect(request.maxCompletionTokens == 128)
        #expect(request.completionTokenLimit == 128)
        #expect(request.seed == 42)
        #expect(request.user == "user-123")
        #expect(request.metadata == ["team": "search"])
        #expect(request.presencePenalty == 0.1)
        #expect(request.frequencyPenalty == 0.2)
        #expect(request.logitBias == ["50256": -100])
        #expect(request.logprobs == true)
        #expect(request.topLogprobs == 2)
        #expect(request.store == false)
        #expect(request.parallelToolCalls == false)
    }

    @Test func streamWithUsage() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_stream_with_usage")
        #expect(request.stream == true)
        #expect(request.streamOptions?.includeUsage == true)
    }

    @Test func toolsToolChoiceToolCallsAndToolMessages() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_tools")
        #expect(request.tools?.first?.function.name == "get_weather")
        #expect(request.tools?.first?.function.strict == true)
        #expect(request.tools?.first?.function.parameters?["required"] == .array([.string("city")]))
        #expect(request.toolChoice == .function(name: "get_weather"))
        let assistant = request.messages[2]
        #expect(assistant.content == nil)
        #expect(assistant.toolCalls == [ToolCall(id: "call_1", function: FunctionCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))])
        #expect(request.messages[3].role == "tool")
        #expect(request.messages[3].toolCallID == "call_1")
        #expect(try Self.decode(ChatCompletionRequest.self, "chat_tool_choice_auto").toolChoice == .mode("auto"))
    }

    @Test func imageContentParts() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_image_parts")
        guard case .parts(let parts) = request.messages[0].content else { Issue.record("expected parts"); return }
        #expect(parts == [.text("What is in this image?"), .imageURL(url: "data:image/png;base64,iVBORw0KGgo=", detail: "low")])
        #expect(request.messages[0].content?.plainText == "What is in this image?")
    }

    @Test func jsonSchemaResponseFormat() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_json_schema")
        #expect(request.responseFormat?.type == "json_schema")
        #expect(request.responseFormat?.jsonSchema?["name"] == .string("person"))
        #expect(request.responseFormat?.jsonSchema?["strict"] == .bool(true))
    }

    @Test func unknownFieldsAreTolerated() throws {
        let request = try Self.decode(ChatCompletionRequest.self, "chat_unknown_fields")
        #expect(request.messages == [.user("Hi")])
    }

    @Test func embeddingsInputsAndEncodingFormats() throws {
        let base64 = try Self.decode(EmbeddingsRequest.self, "embeddings_default")
        #expect(base64.input == .text("The quick brown fox"))
        // The SDK asks for base64 unless told otherwise.
        #expect(base64.encodingFormat == .base64)
        let batch = try Self.decode(EmbeddingsRequest.self, "embeddings_float_batch")
        #expect(batch.input == .texts(["first", "second"]))
        #expect(batch.encodingFormat == .float)
        #expect(batch.dimensions == 256)
        #expect(batch.user == "u1")
        #expect(try Self.decode(EmbeddingsRequest.self, "embeddings_tokens").input == .tokens([1996, 4248, 2829]))
        #expect(try Self.decode(EmbeddingsRequest.self, "embeddings_token_arrays").input == .tokenArrays([[101, 102], [7592]]))
    }

    @Test func everyFixtureRoundTripsWithoutLosingFields() throws {
        // What we re-encode must carry every field we decoded, under OpenAI's names.
        for name in ["chat_basic", "chat_all_parameters", "chat_tools", "chat_image_parts", "chat_json_schema"] {
            let original = try JSONSerialization.jsonObject(with: try Self.fixture(name)) as! NSDictionary
            let request = try JSONDecoder().decode(ChatCompletionRequest.self, from: try Self.fixture(name))
            let again = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(request)) as! NSDictionary
            #expect(again == original, "\(name)")
        }
    }
}
