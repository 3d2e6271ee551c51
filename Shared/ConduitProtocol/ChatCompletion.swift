/// A non-streaming chat completion (`object: "chat.completion"`).
public struct ChatCompletion: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    public var systemFingerprint: String?
    /// Citations, confidence, session and cache details, when Conduit added any.
    public var conduit: ConduitResponseInfo?

    public init(id: String, created: Int, model: String, choices: [Choice], usage: Usage?, systemFingerprint: String? = nil) {
        self.id = id
        self.object = "chat.completion"
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.systemFingerprint = systemFingerprint
    }

    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var message: ChatMessage
        /// `stop`, `length`, `tool_calls`, `content_filter` (or `function_call`).
        public var finishReason: String?
        public var logprobs: JSONValue?

        public init(index: Int, message: ChatMessage, finishReason: String?) {
            self.index = index
            self.message = message
            self.finishReason = finishReason
        }

        enum CodingKeys: String, CodingKey {
            case index, message, logprobs
            case finishReason = "finish_reason"
        }

        // OpenAI always writes `finish_reason` and `logprobs`, null or not.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(message, forKey: .message)
            try container.encode(finishReason, forKey: .finishReason)
            try container.encode(logprobs ?? .null, forKey: .logprobs)
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage, conduit
        case systemFingerprint = "system_fingerprint"
    }
}

/// One server-sent event of a streamed completion (`object: "chat.completion.chunk"`).
public struct ChatCompletionChunk: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    /// Present (and non-null) only on the final usage chunk when `stream_options.include_usage` is set.
    public var usage: Usage?
    public var systemFingerprint: String?
    /// On the last chunk before `[DONE]` when Conduit has citations or session/cache details.
    public var conduit: ConduitResponseInfo?

    public init(id: String, created: Int, model: String, choices: [Choice], usage: Usage? = nil) {
        self.id = id
        self.object = "chat.completion.chunk"
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
    }

    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var delta: Delta
        public var finishReason: String?
        public var logprobs: JSONValue?

        public init(index: Int, delta: Delta, finishReason: String? = nil) {
            self.index = index
            self.delta = delta
            self.finishReason = finishReason
        }

        enum CodingKeys: String, CodingKey {
            case index, delta, logprobs
            case finishReason = "finish_reason"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(delta, forKey: .delta)
            try container.encode(finishReason, forKey: .finishReason)
            try container.encode(logprobs ?? .null, forKey: .logprobs)
        }
    }

    public struct Delta: Codable, Sendable, Hashable {
        public var role: String?
        public var content: String?
        public var refusal: String?
        public var toolCalls: [ToolCallDelta]?

        public init(role: String? = nil, content: String? = nil, toolCalls: [ToolCallDelta]? = nil) {
            self.role = role
            self.content = content
            self.toolCalls = toolCalls
        }

        enum CodingKeys: String, CodingKey {
            case role, content, refusal
            case toolCalls = "tool_calls"
        }
    }

    /// A piece of a tool call: the first carries id and name, later ones more of the arguments.
    public struct ToolCallDelta: Codable, Sendable, Hashable {
        public var index: Int
        public var id: String?
        public var type: String?
        public var function: FunctionDelta?

        public init(index: Int, id: String? = nil, type: String? = nil, function: FunctionDelta? = nil) {
            self.index = index
            self.id = id
            self.type = type
            self.function = function
        }
    }

    public struct FunctionDelta: Codable, Sendable, Hashable {
        public var name: String?
        public var arguments: String?
        public init(name: String? = nil, arguments: String? = nil) {
            self.name = name
            self.arguments = arguments
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage, conduit
        case systemFingerprint = "system_fingerprint"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(object, forKey: .object)
        try container.encode(created, forKey: .created)
        try container.encode(model, forKey: .model)
        try container.encode(choices, forKey: .choices)
        try container.encodeIfPresent(systemFingerprint, forKey: .systemFingerprint)
        // With include_usage OpenAI writes `"usage": null` on every chunk but the last.
        try container.encode(usage, forKey: .usage)
        try container.encodeIfPresent(conduit, forKey: .conduit)
    }
}

/// Token counts of one request.
public struct Usage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    public var promptTokensDetails: PromptTokensDetails?
    public var completionTokensDetails: CompletionTokensDetails?

    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int? = nil, reasoningTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = promptTokens + completionTokens
        self.promptTokensDetails = cachedTokens.map { PromptTokensDetails(cachedTokens: $0) }
        self.completionTokensDetails = reasoningTokens.map { CompletionTokensDetails(reasoningTokens: $0) }
    }

    public struct PromptTokensDetails: Codable, Sendable, Hashable {
        public var cachedTokens: Int?
        public init(cachedTokens: Int?) { self.cachedTokens = cachedTokens }
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }

    public struct CompletionTokensDetails: Codable, Sendable, Hashable {
        public var reasoningTokens: Int?
        public init(reasoningTokens: Int?) { self.reasoningTokens = reasoningTokens }
        enum CodingKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
        case completionTokensDetails = "completion_tokens_details"
    }

    // Some OpenAI-compatible servers leave out `total_tokens`; it is the sum.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try container.decode(Int.self, forKey: .promptTokens)
        completionTokens = try container.decode(Int.self, forKey: .completionTokens)
        totalTokens = try container.decodeIfPresent(Int.self, forKey: .totalTokens) ?? promptTokens + completionTokens
        promptTokensDetails = try container.decodeIfPresent(PromptTokensDetails.self, forKey: .promptTokensDetails)
        completionTokensDetails = try container.decodeIfPresent(CompletionTokensDetails.self, forKey: .completionTokensDetails)
    }
}
