import ConduitProtocol
import Foundation
import Testing

/// What we emit must match OpenAI's field names and nulls exactly.
struct WireFormatTests {
    static func object(_ value: some Encodable) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value)) as! [String: Any]
    }

    @Test func theConduitExtensionDecodesAndStaysOutOfPlainResponses() throws {
        let body = #"{"model":"m","messages":[{"role":"user","content":"q"}],"conduit":{"rag":{"collection":"kb","top_k":3,"mode":"vector","filter":{"field":"lang","eq":"en"},"min_score":0.4,"rewrite":false},"session_id":"s1","cache":false}}"#
        let request = try JSONDecoder().decode(ChatCompletionRequest.self, from: Data(body.utf8))
        #expect(request.conduit?.rag == RAGOptions(collection: "kb", topK: 3, mode: .vector, filter: ["field": "lang", "eq": "en"], minScore: 0.4, rewrite: false))
        #expect(request.conduit?.sessionID == "s1" && request.conduit?.cache == false)
        let plain = ChatCompletion(id: "c", created: 1, model: "m", choices: [], usage: nil)
        #expect(try Self.object(plain)["conduit"] == nil)
        let bad = #"{"model":"m","messages":[],"conduit":{"rag":{"collection":"kb","mode":"fuzzy"}}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ChatCompletionRequest.self, from: Data(bad.utf8)) }
    }

    @Test func usageWithoutTotalTokensIsTheSum() throws {
        let usage = try JSONDecoder().decode(Usage.self, from: Data(#"{"prompt_tokens":7,"completion_tokens":5}"#.utf8))
        #expect(usage.totalTokens == 12)
    }

    @Test func completionUsesOpenAIFieldNames() throws {
        let completion = ChatCompletion(
            id: "chatcmpl-1", created: 1_700_000_000, model: "m",
            choices: [.init(index: 0, message: .assistant("hi"), finishReason: "stop")],
            usage: Usage(promptTokens: 3, completionTokens: 2, cachedTokens: 1, reasoningTokens: 0)
        )
        let json = try Self.object(completion)
        #expect(json["object"] as? String == "chat.completion")
        let choice = try #require((json["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "stop")
        #expect(choice["logprobs"] is NSNull)
        let usage = try #require(json["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 3)
        #expect(usage["completion_tokens"] as? Int == 2)
        #expect(usage["total_tokens"] as? Int == 5)
        #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 1)
        #expect((usage["completion_tokens_details"] as? [String: Any])?["reasoning_tokens"] as? Int == 0)
    }

    @Test func chunkWritesNullFinishReasonAndUsage() throws {
        let chunk = ChatCompletionChunk(
            id: "c", created: 1, model: "m",
            choices: [.init(index: 0, delta: .init(role: "assistant", content: "He"))]
        )
        let json = try Self.object(chunk)
        #expect(json["object"] as? String == "chat.completion.chunk")
        #expect(json["usage"] is NSNull)
        let choice = try #require((json["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] is NSNull)
        #expect((choice["delta"] as? [String: Any])?["content"] as? String == "He")
    }

    @Test func streamedToolCallDeltas() throws {
        let text = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a"}}]},"finish_reason":null}]}"#
        let chunk = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(text.utf8))
        let call = try #require(chunk.choices.first?.delta.toolCalls?.first)
        #expect(call.id == "call_1")
        #expect(call.function?.arguments == #"{"a"#)
    }

    @Test func errorEnvelopeKeepsNullParamAndCode() throws {
        let json = try Self.object(ErrorEnvelope(message: "bad", type: .invalidRequest))
        let error = try #require(json["error"] as? [String: Any])
        #expect(error["message"] as? String == "bad")
        #expect(error["type"] as? String == "invalid_request_error")
        #expect(error["param"] is NSNull)
        #expect(error["code"] is NSNull)
    }

    @Test func errorTypesHaveTheirStatuses() {
        #expect(ErrorType.authentication.status == 401)
        #expect(ErrorType.rateLimit.status == 429)
        #expect(ErrorType.budgetExceeded.status == 429)
        #expect(ErrorType.upstream.status == 502)
    }

    @Test func base64EmbeddingsAreLittleEndianFloat32() throws {
        let vector = EmbeddingVector([1.0, -2.5, 0.125], format: .base64)
        guard case .base64(let text) = vector else { Issue.record("expected base64"); return }
        #expect(Data(base64Encoded: text)?.count == 12)
        // 1.0f is 0x3F800000: little-endian bytes 00 00 80 3F.
        #expect(Array(Data(base64Encoded: text)!.prefix(4)) == [0, 0, 0x80, 0x3F])
        #expect(vector.floats == [1.0, -2.5, 0.125])
        #expect(EmbeddingVector.base64("not base64!").floats == nil)
    }

    @Test func embeddingsResponseShape() throws {
        let response = EmbeddingsResponse(data: [Embedding(index: 0, embedding: .float([0.5]))], model: "m", usage: .init(promptTokens: 4))
        let json = try Self.object(response)
        #expect(json["object"] as? String == "list")
        #expect(((json["data"] as? [[String: Any]])?.first)?["object"] as? String == "embedding")
        #expect((json["usage"] as? [String: Any])?["total_tokens"] as? Int == 4)
    }

    @Test func modelListShape() throws {
        let json = try Self.object(ModelList(data: [.init(id: "smollm2", created: 1, ownedBy: "conduit")]))
        let model = try #require((json["data"] as? [[String: Any]])?.first)
        #expect(model["owned_by"] as? String == "conduit")
        #expect(model["object"] as? String == "model")
    }

    @Test func malformedEmbeddingInputSaysWhatIsExpected() {
        let body = #"{"model":"m","input":[1,"two"]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(EmbeddingsRequest.self, from: Data(body.utf8)) }
    }

    @Test func wrongTypesAreRejected() {
        let body = #"{"model":"m","messages":"hello"}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ChatCompletionRequest.self, from: Data(body.utf8)) }
    }
}
