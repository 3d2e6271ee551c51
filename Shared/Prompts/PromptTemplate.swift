import ConduitProtocol
import Foundation

/// What a prompt's version holds: a text template, or a chat template (role + content
/// messages, with placeholders where a list of messages such as a history goes).
public enum PromptBody: Sendable, Hashable {
    case text(String)
    case chat([PromptMessage])

    public var type: PromptType {
        switch self {
        case .text: .text
        case .chat: .chat
        }
    }

    /// Every template text of the body, in order (a text body's one, a chat body's contents).
    public var templates: [String] {
        switch self {
        case .text(let template): [template]
        case .chat(let messages): messages.compactMap(\.content)
        }
    }
}

public enum PromptType: String, Codable, Sendable, Hashable {
    case text, chat
}

/// One entry of a chat template.
public enum PromptMessage: Sendable, Hashable, Codable {
    /// A message whose content is a template.
    case message(role: String, content: String)
    /// Where the messages of a variable (a list of `{"role", "content"}`) go.
    case placeholder(name: String)

    var content: String? {
        if case .message(_, let content) = self { content } else { nil }
    }

    enum CodingKeys: String, CodingKey { case type, role, content, name }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if try container.decodeIfPresent(String.self, forKey: .type) == "placeholder" {
            self = .placeholder(name: try container.decode(String.self, forKey: .name))
        } else {
            self = .message(role: try container.decode(String.self, forKey: .role), content: try container.decode(String.self, forKey: .content))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .message(let role, let content):
            try container.encode(role, forKey: .role)
            try container.encode(content, forKey: .content)
        case .placeholder(let name):
            try container.encode("placeholder", forKey: .type)
            try container.encode(name, forKey: .name)
        }
    }
}

/// One immutable version of a prompt, as the registry stores it and the orchestrator renders it.
public struct PromptVersion: Sendable, Hashable, Codable {
    public var name: String
    public var version: Int
    public var body: PromptBody
    /// Free JSON (model, temperature, max_tokens, tools, response_format …), applied under the
    /// request's own fields.
    public var config: [String: JSONValue]
    public var commitMessage: String?
    public var author: String?
    public var createdAt: Date?

    public init(name: String, version: Int, body: PromptBody, config: [String: JSONValue] = [:],
                commitMessage: String? = nil, author: String? = nil, createdAt: Date? = nil) {
        self.name = name
        self.version = version
        self.body = body
        self.config = config
        self.commitMessage = commitMessage
        self.author = author
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case name, version, type, template, messages, config, author
        case commitMessage = "commit_message"
        case createdAt = "created_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        version = try container.decode(Int.self, forKey: .version)
        switch try container.decode(PromptType.self, forKey: .type) {
        case .text: body = .text(try container.decode(String.self, forKey: .template))
        case .chat: body = .chat(try container.decode([PromptMessage].self, forKey: .messages))
        }
        config = try container.decodeIfPresent([String: JSONValue].self, forKey: .config) ?? [:]
        commitMessage = try container.decodeIfPresent(String.self, forKey: .commitMessage)
        author = try container.decodeIfPresent(String.self, forKey: .author)
        createdAt = try container.decodeIfPresent(Date.self, forKey: .createdAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try container.encode(body.type, forKey: .type)
        switch body {
        case .text(let template): try container.encode(template, forKey: .template)
        case .chat(let messages): try container.encode(messages, forKey: .messages)
        }
        try container.encode(config, forKey: .config)
        try container.encodeIfPresent(commitMessage, forKey: .commitMessage)
        try container.encodeIfPresent(author, forKey: .author)
        try container.encodeIfPresent(createdAt, forKey: .createdAt)
    }
}

/// Which version of a prompt: a label's (`production` by default) or a number.
public enum PromptSelector: Sendable, Hashable, CustomStringConvertible {
    case label(String)
    case version(Int)

    public static let production = PromptSelector.label("production")

    public var description: String {
        switch self {
        case .label(let label): label
        case .version(let version): String(version)
        }
    }
}

/// The rules for names and labels, shared by the registry (which refuses others) and the
/// orchestrator (which places them in Redis keys).
public enum PromptNames {
    /// Folders with `/`; letters, digits, `.`, `-`, `_`; no empty segment; at most 200 bytes.
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 200, !name.hasPrefix("/"), !name.hasSuffix("/"), !name.contains("//") else { return false }
        return name.utf8.allSatisfy { isWordByte($0) || $0 == UInt8(ascii: "/") }
    }

    /// Letters, digits, `.`, `-`, `_`; not all digits (that would read as a version); at most 64 bytes.
    public static func isValidLabel(_ label: String) -> Bool {
        guard !label.isEmpty, label.utf8.count <= 64, !label.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return false }
        return label.utf8.allSatisfy(isWordByte)
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}
