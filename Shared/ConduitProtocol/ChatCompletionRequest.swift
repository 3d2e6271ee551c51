/// `POST /v1/chat/completions` body, as OpenAI documents it. Unknown fields are ignored.
public struct ChatCompletionRequest: Codable, Sendable, Hashable {
    public var model: String
    public var messages: [ChatMessage]
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var tools: [Tool]?
    public var toolChoice: ToolChoice?
    public var parallelToolCalls: Bool?
    public var responseFormat: ResponseFormat?
    public var temperature: Double?
    public var topP: Double?
    public var n: Int?
    public var stop: OneOrMany<String>?
    /// Deprecated by OpenAI in favour of `max_completion_tokens`; both are accepted.
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var logitBias: [String: Double]?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    public var seed: Int?
    public var user: String?
    public var metadata: [String: String]?
    public var store: Bool?
    public var reasoningEffort: String?
    public var serviceTier: String?
    /// Conduit's own options; removed before the request reaches a provider.
    public var conduit: ConduitOptions?

    public init(model: String, messages: [ChatMessage], stream: Bool? = nil) {
        self.model = model
        self.messages = messages
        self.stream = stream
    }

    /// The completion limit the caller asked for, whichever field carried it.
    public var completionTokenLimit: Int? { maxCompletionTokens ?? maxTokens }

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, tools, temperature, n, stop, seed, user, metadata, store, logprobs, conduit
        case streamOptions = "stream_options"
        case toolChoice = "tool_choice"
        case parallelToolCalls = "parallel_tool_calls"
        case responseFormat = "response_format"
        case topP = "top_p"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case logitBias = "logit_bias"
        case topLogprobs = "top_logprobs"
        case reasoningEffort = "reasoning_effort"
        case serviceTier = "service_tier"
    }
}

public struct StreamOptions: Codable, Sendable, Hashable {
    public var includeUsage: Bool?
    public init(includeUsage: Bool? = nil) { self.includeUsage = includeUsage }
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// `response_format`: `text`, `json_object`, or `json_schema` with its schema.
public struct ResponseFormat: Codable, Sendable, Hashable {
    public var type: String
    public var jsonSchema: JSONValue?
    public init(type: String, jsonSchema: JSONValue? = nil) {
        self.type = type
        self.jsonSchema = jsonSchema
    }
    enum CodingKeys: String, CodingKey {
        case type
        case jsonSchema = "json_schema"
    }
}

/// A function the model may call.
public struct Tool: Codable, Sendable, Hashable {
    public var type: String
    public var function: FunctionDefinition
    public init(function: FunctionDefinition) {
        self.type = "function"
        self.function = function
    }
}

public struct FunctionDefinition: Codable, Sendable, Hashable {
    public var name: String
    public var description: String?
    /// A JSON Schema object.
    public var parameters: JSONValue?
    public var strict: Bool?
    public init(name: String, description: String? = nil, parameters: JSONValue? = nil, strict: Bool? = nil) {
        self.name = name
        self.description = description
        self.parameters = parameters
        self.strict = strict
    }
}

/// `tool_choice`: `"none"`, `"auto"`, `"required"`, or one named function.
public enum ToolChoice: Codable, Sendable, Hashable {
    case mode(String)
    case function(name: String)

    private struct Named: Codable {
        struct Function: Codable { var name: String }
        var type: String
        var function: Function
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let mode = try? container.decode(String.self) {
            self = .mode(mode)
        } else {
            self = .function(name: try container.decode(Named.self).function.name)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .mode(let mode): try container.encode(mode)
        case .function(let name): try container.encode(Named(type: "function", function: .init(name: name)))
        }
    }
}
