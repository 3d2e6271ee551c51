import ConduitKit
import ConduitProtocol
import HTTPTypes
import Providers

/// Checks OpenAI makes before a request reaches a model, with its messages and `param`s.
enum ChatRequestValidation {
    static let roles: Set<String> = ["system", "developer", "user", "assistant", "tool"]

    static func validate(_ request: ChatCompletionRequest) throws {
        guard !request.model.isEmpty else { throw APIError.invalidRequest("you must provide a model parameter", param: "model") }
        // A template (`conduit.prompt`) may bring every message.
        guard !request.messages.isEmpty || request.conduit?.prompt != nil else {
            throw APIError.invalidRequest("[] is too short - 'messages'", param: "messages", code: "empty_array")
        }
        for (index, message) in request.messages.enumerated() {
            guard roles.contains(message.role) else {
                throw APIError.invalidRequest("Invalid value: '\(message.role)'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", param: "messages[\(index)].role", code: "invalid_value")
            }
            if message.role == "tool", message.toolCallID == nil {
                throw APIError.invalidRequest("Missing required parameter: 'messages[\(index)].tool_call_id'.", param: "messages[\(index)].tool_call_id", code: "missing_required_parameter")
            }
            // Only an assistant message that calls tools may go without content.
            if message.content == nil, !(message.role == "assistant" && message.toolCalls?.isEmpty == false) {
                throw APIError.invalidRequest("Missing required parameter: 'messages[\(index)].content'.", param: "messages[\(index)].content", code: "missing_required_parameter")
            }
        }
        if let temperature = request.temperature, !(0...2).contains(temperature) {
            throw APIError.invalidRequest("Invalid 'temperature': must be between 0 and 2.", param: "temperature", code: "invalid_value")
        }
        if let topP = request.topP, !(0...1).contains(topP) {
            throw APIError.invalidRequest("Invalid 'top_p': must be between 0 and 1.", param: "top_p", code: "invalid_value")
        }
        if let limit = request.completionTokenLimit, limit < 1 {
            throw APIError.invalidRequest("Invalid 'max_tokens': must be at least 1.", param: request.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens", code: "invalid_value")
        }
        for (value, param) in [(request.presencePenalty, "presence_penalty"), (request.frequencyPenalty, "frequency_penalty")] {
            if let value, !(-2...2).contains(value) {
                throw APIError.invalidRequest("Invalid '\(param)': must be between -2 and 2.", param: param, code: "invalid_value")
            }
        }
        for (token, bias) in request.logitBias ?? [:] {
            guard let id = Int(token), id >= 0 else {
                throw APIError.invalidRequest("Invalid 'logit_bias': keys must be token ids (non-negative integers), not '\(token)'.", param: "logit_bias", code: "invalid_value")
            }
            guard (-100...100).contains(bias) else {
                throw APIError.invalidRequest("Invalid 'logit_bias[\(id)]': a bias must be between -100 and 100.", param: "logit_bias", code: "invalid_value")
            }
        }
        if let topLogprobs = request.topLogprobs {
            guard (0...20).contains(topLogprobs) else {
                throw APIError.invalidRequest("Invalid 'top_logprobs': must be between 0 and 20.", param: "top_logprobs", code: "invalid_value")
            }
            guard request.logprobs == true else {
                throw APIError.invalidRequest("'top_logprobs' needs 'logprobs' set to true.", param: "top_logprobs", code: "invalid_value")
            }
        }
        if let n = request.n, !(1...128).contains(n) {
            throw APIError.invalidRequest("Invalid 'n': must be between 1 and 128.", param: "n", code: "invalid_value")
        }
        if request.streamOptions != nil, request.stream != true {
            throw APIError.invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options", code: "invalid_value")
        }
        for (index, tool) in (request.tools ?? []).enumerated() where tool.type != "function" || tool.function.name.isEmpty {
            throw APIError.invalidRequest("Invalid tool: every tool needs type 'function' and a name.", param: "tools[\(index)]", code: "invalid_value")
        }
        try validateToolChoice(request)
        try validateResponseFormat(request.responseFormat)
    }

    private static func validateToolChoice(_ request: ChatCompletionRequest) throws {
        let names = Set((request.tools ?? []).map(\.function.name))
        switch request.toolChoice {
        case nil:
            return
        case .mode(let mode):
            guard ["none", "auto", "required"].contains(mode) else {
                throw APIError.invalidRequest("Invalid value: '\(mode)'. Supported values are: 'none', 'auto' and 'required'.", param: "tool_choice", code: "invalid_value")
            }
            if mode == "required", names.isEmpty {
                throw APIError.invalidRequest("Invalid value for 'tool_choice': 'required' needs at least one tool in 'tools'.", param: "tool_choice", code: "invalid_value")
            }
        case .function(let name):
            guard names.contains(name) else {
                throw APIError.invalidRequest("Invalid value for 'tool_choice': no function named '\(name)' is in 'tools'.", param: "tool_choice", code: "invalid_value")
            }
        }
    }

    private static func validateResponseFormat(_ format: ResponseFormat?) throws {
        guard let format else { return }
        switch format.type {
        case "text", "json_object":
            return
        case "json_schema":
            guard let schema = format.jsonSchema, schema.objectValue != nil else {
                throw APIError.invalidRequest("Missing required parameter: 'response_format.json_schema'.", param: "response_format.json_schema", code: "missing_required_parameter")
            }
            guard let name = schema["name"]?.stringValue, !name.isEmpty else {
                throw APIError.invalidRequest("Missing required parameter: 'response_format.json_schema.name'.", param: "response_format.json_schema.name", code: "missing_required_parameter")
            }
        default:
            throw APIError.invalidRequest("Invalid value: '\(format.type)'. Supported values are: 'text', 'json_object' and 'json_schema'.", param: "response_format.type", code: "invalid_value")
        }
    }
}
