import ConduitProtocol
import Foundation
import HTTP

/// Translates between the OpenAI chat format and one provider family's wire format, both ways.
/// Adapters are pure: the transport, timeouts and retries belong to `ProviderClient` and
/// `ProviderRouter`, so each adapter is tested on its translations alone.
public protocol ProviderAdapter: Sendable {
    /// The provider's HTTP request for `request` at `deployment`.
    func makeRequest(_ request: ChatCompletionRequest, for deployment: Deployment, apiKey: String?, stream: Bool) throws -> HTTPRequest
    /// A complete response body as an OpenAI completion stamped with `stamp`.
    func completion(from body: [UInt8], stamp: ResponseStamp) throws -> ChatCompletion
    /// A translator for one streamed response.
    func streamTranslator(stamp: ResponseStamp) -> any StreamTranslator
    /// The human-readable message of an error body, when the body has one.
    func errorMessage(from body: [UInt8]) -> String?
}

extension ProviderAdapter {
    /// Every family documented so far nests it as `error.message` (Anthropic beside a `type`,
    /// Gemini beside a `code` and `status`).
    public func errorMessage(from body: [UInt8]) -> String? {
        WireJSON.errorMessage(body)
    }
}

/// Turns a provider's server-sent events into OpenAI `chat.completion.chunk`s.
public protocol StreamTranslator {
    /// The chunks one event adds; throws `ProviderError` on an error event or a malformed one.
    mutating func translate(_ event: SSEEvent) throws -> [ChatCompletionChunk]
    /// Whether the provider's end-of-stream marker has been seen; a body ending before it was cut.
    var isFinished: Bool { get }
    /// Token counts, once the provider has sent them.
    var usage: ProviderUsage? { get }
}

/// What every response of one request carries, whoever served it: our id, time and the public
/// model name (never the provider's internal names).
public struct ResponseStamp: Sendable, Hashable {
    public var id: String
    public var created: Int
    public var model: String

    public init(id: String, created: Int, model: String) {
        self.id = id
        self.created = created
        self.model = model
    }

    public static func new(model: String) -> ResponseStamp {
        ResponseStamp(id: "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                      created: Int(Date().timeIntervalSince1970), model: model)
    }

    func chunk(_ choices: [ChatCompletionChunk.Choice]) -> ChatCompletionChunk {
        ChatCompletionChunk(id: id, created: created, model: model, choices: choices)
    }

    func chunk(delta: ChatCompletionChunk.Delta, finishReason: String? = nil) -> ChatCompletionChunk {
        chunk([.init(index: 0, delta: delta, finishReason: finishReason)])
    }
}

extension ProviderKind {
    public var adapter: any ProviderAdapter {
        switch self {
        case .openAI: OpenAICompatibleAdapter()
        case .azureOpenAI: AzureOpenAIAdapter()
        case .anthropic: AnthropicAdapter()
        case .gemini: GeminiAdapter()
        }
    }
}

extension Usage {
    public init(_ usage: ProviderUsage) {
        self.init(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                  cachedTokens: usage.cachedTokens, reasoningTokens: usage.reasoningTokens)
    }
}

extension ProviderUsage {
    public init(_ usage: Usage) {
        self.init(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                  cachedTokens: usage.promptTokensDetails?.cachedTokens ?? 0,
                  reasoningTokens: usage.completionTokensDetails?.reasoningTokens ?? 0)
    }
}

/// A conversation in the strictly alternating turns Anthropic and Gemini require: consecutive
/// messages of one role (say, several tool results) become one turn.
struct AlternatingTurns {
    private var turns: [(role: String, items: [JSONValue])] = []

    mutating func append(_ role: String, _ items: [JSONValue]) {
        guard !items.isEmpty else { return }
        if turns.last?.role == role { turns[turns.count - 1].items += items } else { turns.append((role, items)) }
    }

    /// `[{"role": …, itemsKey: […]}, …]`.
    func json(itemsKey: String) -> JSONValue {
        .array(turns.map { ["role": .string($0.role), itemsKey: .array($0.items)] })
    }
}

/// Parsing helpers shared by the adapters.
enum WireJSON {
    static func object(_ bytes: [UInt8], provider: String) throws -> JSONValue {
        guard let value = JSONValue.parse(bytes), value.objectValue != nil else {
            throw ProviderError(.malformedResponse, message: "\(provider) sent a body that is not a JSON object")
        }
        return value
    }

    static func object(_ text: String, provider: String) throws -> JSONValue {
        try object(Array(text.utf8), provider: provider)
    }

    static func encode(_ value: JSONValue) throws -> [UInt8] {
        try WireCoding.encode(value.withoutNulls)
    }

    /// `data:` URLs as (media type, base64 data).
    static func dataURL(_ url: String) -> (mediaType: String, data: String)? {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else { return nil }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(";base64".count)
        return (String(header), String(url[url.index(after: comma)...]))
    }

    /// The `error.message` of an OpenAI-shaped (or Anthropic-shaped) error body.
    static func errorMessage(_ bytes: [UInt8]) -> String? {
        guard let value = JSONValue.parse(bytes) else { return nil }
        if let message = value["error"]?["message"]?.stringValue { return message }
        return value["error"]?.stringValue ?? value["message"]?.stringValue
    }
}
