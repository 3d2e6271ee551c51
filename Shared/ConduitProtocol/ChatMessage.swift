/// One message of a conversation: `system`, `developer`, `user`, `assistant` or `tool`.
public struct ChatMessage: Codable, Sendable, Hashable {
    public var role: String
    /// Absent or null on assistant messages that only call tools.
    public var content: MessageContent?
    public var name: String?
    public var toolCalls: [ToolCall]?
    /// On `tool` messages: the call this message answers.
    public var toolCallID: String?
    public var refusal: String?

    public init(role: String, content: MessageContent?, name: String? = nil, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: "system", content: .text(text)) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: "user", content: .text(text)) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: "assistant", content: .text(text)) }

    enum CodingKeys: String, CodingKey {
        case role, content, name, refusal
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }

    // `content` is always written, as null on tool-call-only assistant messages, like OpenAI does.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        try container.encode(content, forKey: .content)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encodeIfPresent(toolCalls, forKey: .toolCalls)
        try container.encodeIfPresent(toolCallID, forKey: .toolCallID)
        try container.encodeIfPresent(refusal, forKey: .refusal)
    }
}

/// Message content: a plain string or an array of typed parts.
public enum MessageContent: Codable, Sendable, Hashable {
    case text(String)
    case parts([ContentPart])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([ContentPart].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .parts(let parts): try container.encode(parts)
        }
    }

    /// The text of all text parts, joined; images and other parts contribute nothing.
    public var plainText: String {
        switch self {
        case .text(let text): text
        case .parts(let parts): parts.compactMap(\.text).joined(separator: "\n")
        }
    }
}

/// One part of array content. Part types this version does not know are kept as they came.
public enum ContentPart: Codable, Sendable, Hashable {
    case text(String)
    case imageURL(url: String, detail: String?)
    case other(type: String, body: JSONValue)

    private enum CodingKeys: String, CodingKey {
        case type, text
        case imageURL = "image_url"
    }

    private struct ImageURL: Codable {
        var url: String
        var detail: String?
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "text":
            self = .text(try container.decode(String.self, forKey: .text))
        case "image_url":
            let image = try container.decode(ImageURL.self, forKey: .imageURL)
            self = .imageURL(url: image.url, detail: image.detail)
        default:
            self = .other(type: type, body: try JSONValue(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .text(let text):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode("text", forKey: .type)
            try container.encode(text, forKey: .text)
        case .imageURL(let url, let detail):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode("image_url", forKey: .type)
            try container.encode(ImageURL(url: url, detail: detail), forKey: .imageURL)
        case .other(_, let body):
            try body.encode(to: encoder)
        }
    }

    public var text: String? {
        if case .text(let text) = self { return text }
        return nil
    }
}

/// A tool call made by the assistant.
public struct ToolCall: Codable, Sendable, Hashable {
    public var id: String
    public var type: String
    public var function: FunctionCall

    public init(id: String, function: FunctionCall) {
        self.id = id
        self.type = "function"
        self.function = function
    }
}

public struct FunctionCall: Codable, Sendable, Hashable {
    public var name: String
    /// JSON text, exactly as the model produced it (it may not parse).
    public var arguments: String
    public init(name: String, arguments: String) {
        self.name = name
        self.arguments = arguments
    }
}
