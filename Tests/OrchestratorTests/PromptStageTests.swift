import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
@testable import Orchestrator
import Testing

/// How a prompt version's `config` meets the request: under it, field by field.
struct PromptStageTests {
    static func request(_ json: String) throws -> ChatCompletionRequest {
        try JSONDecoder().decode(ChatCompletionRequest.self, from: Data(json.utf8))
    }

    @Test func theConfigFillsOnlyWhatTheRequestLeavesUnset() throws {
        let config: [String: JSONValue] = [
            "model": "other", "temperature": 0.9, "top_p": 0.5, "max_tokens": 300, "stop": ["END"], "seed": 7,
            "tools": [["type": "function", "function": ["name": "lookup", "parameters": ["type": "object"]]]],
            "response_format": ["type": "json_object"], "unknown_field": true,
        ]
        let applied = try PromptStage.applying(config, under: try Self.request(
            #"{"model":"m","temperature":0.1,"max_completion_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#))
        #expect(applied.model == "m" && applied.temperature == 0.1)
        #expect(applied.topP == 0.5 && applied.seed == 7 && applied.stop == .many(["END"]))
        // The request's own completion limit stands: the config's does not add a second one.
        #expect(applied.maxTokens == nil && applied.maxCompletionTokens == 20)
        #expect(applied.tools?.first?.function.name == "lookup")
        #expect(applied.responseFormat != nil)
        #expect(applied.messages.count == 1)
    }

    @Test func aConfigFieldOfTheWrongShapeIsAClearError() throws {
        do {
            _ = try PromptStage.applying(["tools": "lookup"], under: try Self.request(#"{"model":"m","messages":[]}"#))
            Issue.record("a string was taken as tools")
        } catch let error as APIError {
            #expect(error.status == .badRequest && error.envelope.error.code == "invalid_prompt_config")
            #expect(error.envelope.error.message.contains("'tools'"))
        }
    }
}
