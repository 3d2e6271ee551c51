import ConduitHTTP
import ConduitKit
import ConduitProtocol
import Flows
import Foundation
import HTTP
import HTTPTypes
import Hummingbird
import NIOCore
import PDF
import Providers
import Synchronization

/// Who runs a flow: the request that started it, whose signed identity every step's model and
/// service calls carry (so they are authorized and billed as that caller's).
struct FlowCaller: Sendable {
    var context: ConduitRequestContext
    var tenant: String
}

/// `chat`: one chat completion through the whole chat pipeline (prompt, routing, session,
/// cache, RAG, budgets, the usage event tagged with the run). Config: `model`, `messages`,
/// `max_tokens`, `temperature`, `conduit` (as in `/v1/chat/completions`). Output:
/// `{"content", "usage", "finish_reason", "model"}` (and `citations` when it retrieved).
struct ChatStepExecutor: FlowExecutor {
    let name = "chat"
    let chat: ChatController

    func validate(config: JSONValue, path: String) throws {
        guard case .string? = config["model"] else { throw FlowValidationError("\(path).model", "required: a model name") }
        guard case .array(let messages)? = config["messages"], !messages.isEmpty else {
            throw FlowValidationError("\(path).messages", "required: a list of messages")
        }
        if config["stream"] != nil { throw FlowValidationError("\(path).stream", "a step's chat does not stream (stream the run instead)") }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        let request: ChatCompletionRequest
        do {
            request = try JSONDecoder().decode(ChatCompletionRequest.self, from: Data(config.jsonString.utf8))
        } catch let error as DecodingError {
            throw FlowStepError.invalid("the rendered config is not a chat request: \(DecodingProblem.message(error, subject: "The config"))")
        }
        let (completion, cost) = try await Self.complete(request, chat: chat, context: context)
        var output: [String: JSONValue] = [
            "content": .string(completion.choices.first?.message.content?.plainText ?? ""),
            "finish_reason": completion.choices.first?.finishReason.map(JSONValue.string) ?? .null,
            "model": .string(completion.model),
        ]
        if let usage = completion.usage {
            output["usage"] = ["prompt_tokens": .number(Double(usage.promptTokens)), "completion_tokens": .number(Double(usage.completionTokens)),
                               "total_tokens": .number(Double(usage.promptTokens + usage.completionTokens))]
        }
        if let citations = completion.conduit?.citations {
            output["citations"] = JSONValue.parse(try JSONEncoder().encode(citations)) ?? .null
        }
        return FlowStepOutput(.object(output), costUSD: cost)
    }

    /// One model call of a step through the whole chat pipeline (prompt, routing, budgets, the
    /// usage event tagged with the run): the completion and what it cost by the deployment's prices.
    static func complete(_ request: ChatCompletionRequest, chat: ChatController, context: FlowStepContext<FlowCaller>) async throws -> (ChatCompletion, Double) {
        let response: Response
        do {
            response = try await chat.complete(request, headers: [:], context: context.caller.context, flowRun: (context.flow, context.runID))
        } catch let error as APIError {
            throw FlowStepError(kind: error.envelope.error.type, message: error.envelope.error.message)
        }
        let bytes = try await ResponseCollector.collect(response.body)
        guard response.status == .ok else {
            let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(bytes))
            throw FlowStepError(kind: envelope?.error.type ?? "server_error", message: envelope?.error.message ?? "the model call failed (\(response.status.code))")
        }
        let completion = try JSONDecoder().decode(ChatCompletion.self, from: Data(bytes))
        var cost = 0.0
        if let usage = completion.usage, let id = response.headers[HTTPField.Name("X-Conduit-Deployment")!],
           let deployment = chat.models.catalog.models.lazy.flatMap(\.deployments).first(where: { $0.id == id }) {
            cost = deployment.prices.cost(of: ProviderUsage(usage))
        }
        return (completion, cost)
    }
}

/// `retrieve`: a search of the caller's collection. Config: `collection`, `query`, `top_k`,
/// `mode`, `filter`. Output: the hits (`text`, `doc_id`, `score`, `metadata`).
struct RetrieveStepExecutor: FlowExecutor {
    let name = "retrieve"
    let services: any InternalServices

    func validate(config: JSONValue, path: String) throws {
        guard case .string? = config["collection"] else { throw FlowValidationError("\(path).collection", "required") }
        guard case .string? = config["query"] else { throw FlowValidationError("\(path).query", "required") }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let collection = config["collection"]?.stringValue, let query = config["query"]?.stringValue else {
            throw FlowStepError.invalid("'collection' and 'query' are strings")
        }
        let mode = config["mode"]?.stringValue.flatMap(RAGOptions.Mode.init(rawValue:))
        let options = RAGOptions(collection: collection, topK: config["top_k"]?.intValue ?? 5, mode: mode, filter: config["filter"])
        do {
            let hits = try await services.search(options, query: query, tenant: context.caller.tenant, context: context.caller.context)
            return FlowStepOutput(.array(hits.map { hit in
                ["text": .string(hit.text), "doc_id": .string(hit.docID), "chunk_id": .string(hit.chunkID), "score": .number(hit.score),
                 "metadata": .object(hit.metadata)]
            }))
        } catch let error as APIError {
            throw FlowStepError(kind: error.envelope.error.type, message: error.envelope.error.message)
        }
    }
}

/// `embed`: the embedding of `input` (a string). Output: the vector.
struct EmbedStepExecutor: FlowExecutor {
    let name = "embed"
    let services: any InternalServices

    func validate(config: JSONValue, path: String) throws {
        guard case .string? = config["input"] else { throw FlowValidationError("\(path).input", "required: the text to embed") }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let input = config["input"]?.stringValue else { throw FlowStepError.invalid("'input' is a string") }
        do {
            let vector = try await services.embed(input, tenant: context.caller.tenant, context: context.caller.context)
            return FlowStepOutput(.array(vector.map { .number(Double($0)) }))
        } catch let error as APIError {
            throw FlowStepError(kind: error.envelope.error.type, message: error.envelope.error.message)
        }
    }
}

/// `flow`: runs another flow of the caller's (or a shipped one) as a nested run. Config:
/// `name`, `version` (optional), `inputs`. Output: the nested run's output.
struct NestedFlowExecutor: FlowExecutor {
    let name = "flow"
    let library: FlowLibrary

    func validate(config: JSONValue, path: String) throws {
        guard case .string? = config["name"] else { throw FlowValidationError("\(path).name", "required: the flow to run") }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let name = config["name"]?.stringValue else { throw FlowStepError.invalid("'name' is a string") }
        guard let flow = try await library.definition(tenant: context.caller.tenant, name: name, version: config["version"]?.stringValue) else {
            throw FlowStepError.invalid("no flow '\(name)'")
        }
        let record: FlowRunRecord
        do {
            record = try await context.runNested(flow, inputs: config["inputs"] ?? .object([:]))
        } catch let error as FlowValidationError {
            throw FlowStepError.invalid("flow '\(name)': \(error)")
        }
        switch record.status {
        case .succeeded: return FlowStepOutput(record.output ?? .null, costUSD: record.costUSD)
        case .cancelled: throw FlowStepError(kind: FlowStepError.cancelled, message: "flow '\(name)' was cancelled")
        default: throw FlowStepError(kind: "server_error", message: "flow '\(name)' failed: \(record.error ?? "error")")
        }
    }
}

/// `http`: a request to a host the operator allows (`CONDUIT_FLOW_HTTP_HOSTS`, `host:port`
/// entries; none by default). Config: `url`, `method` (GET), `headers`, `body` (sent as JSON).
/// Output: `{"status", "body"}` (the body parsed when it is JSON). A 5xx or 429 is an
/// `upstream_error` (retried by a step's `retry`); other statuses are output as they are.
struct HTTPStepExecutor: FlowExecutor {
    let name = "http"
    let http: HTTPClient
    let allowedHosts: Set<String>
    static let maxResponseBytes = 1 << 20

    func validate(config: JSONValue, path: String) throws {
        guard case .string(let url)? = config["url"] else { throw FlowValidationError("\(path).url", "required") }
        if !url.contains("{{") {
            guard let host = Self.hostAndPort(url) else { throw FlowValidationError("\(path).url", "an http:// or https:// URL") }
            guard allowedHosts.contains(host) else { throw FlowValidationError("\(path).url", "host \(host) is not among the allowed ones (CONDUIT_FLOW_HTTP_HOSTS)") }
        }
        if let method = config["method"]?.stringValue, !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) {
            throw FlowValidationError("\(path).method", "GET, POST, PUT, PATCH or DELETE")
        }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let url = config["url"]?.stringValue, let host = Self.hostAndPort(url) else { throw FlowStepError.invalid("'url' is an http(s) URL") }
        guard allowedHosts.contains(host) else { throw FlowStepError.invalid("host \(host) is not allowed (CONDUIT_FLOW_HTTP_HOSTS)") }
        var headers: [(name: String, value: String)] = []
        for (key, value) in config["headers"]?.objectValue ?? [:] {
            guard let text = value.stringValue, !text.contains("\r"), !text.contains("\n") else { throw FlowStepError.invalid("header \(key) is not text") }
            headers.append((key, text))
        }
        var body: [UInt8]?
        if let value = config["body"] {
            body = Array(value.jsonString.utf8)
            headers.append(("Content-Type", "application/json"))
        }
        let response: HTTP.HTTPResponse
        let bytes: [UInt8]
        do {
            response = try await http.execute(HTTP.HTTPRequest(method: config["method"]?.stringValue ?? "GET", url: url, headers: headers, body: body, timeout: .seconds(30)))
            bytes = try await response.body.collect(upTo: Self.maxResponseBytes)
        } catch {
            throw FlowStepError(kind: "upstream_error", message: "\(host) could not be reached: \(error)")
        }
        if response.status >= 500 || response.status == 429 {
            throw FlowStepError(kind: "upstream_error", message: "\(host) answered \(response.status)")
        }
        let parsed = JSONValue.parse(bytes) ?? .string(String(decoding: bytes, as: UTF8.self))
        return FlowStepOutput(["status": .number(Double(response.status)), "body": parsed])
    }

    static func hostAndPort(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
              let host = components.host, !host.isEmpty else { return nil }
        return "\(host):\(components.port ?? (scheme == "https" ? 443 : 80))"
    }
}

/// `extract`: the text of a document. Config: `content` (the text, or base64 with
/// `encoding: base64`; a PDF is always base64), `content_type` (`text/plain`, `text/markdown`,
/// `text/html`, `application/pdf`). Output: `{"text", "content_type", "characters"}`, and for a
/// PDF `pages` (`[{"page", "text"}]`, so citations can name the page). HTML loses its tags,
/// scripts and styles. An encrypted or damaged PDF is an `invalid_request_error` naming why.
/// PDFs and HTML are read on the engine threads, never on the cooperative pool.
struct ExtractStepExecutor: FlowExecutor {
    let name = "extract"
    /// Where PDFs are parsed; nil: PDFs are refused.
    var engine: EngineExecutor?
    static let maxBytes = 8 << 20

    func validate(config: JSONValue, path: String) throws {
        guard config["content"] != nil else { throw FlowValidationError("\(path).content", "required: the document") }
    }

    func run(config: JSONValue, context: FlowStepContext<FlowCaller>) async throws -> FlowStepOutput {
        guard let content = config["content"]?.stringValue else { throw FlowStepError.invalid("'content' is a string") }
        let type = (config["content_type"]?.stringValue ?? "text/plain").lowercased()
        var bytes = Array(content.utf8)
        if config["encoding"]?.stringValue == "base64" || type == "application/pdf" {
            guard let decoded = Data(base64Encoded: content, options: .ignoreUnknownCharacters) else { throw FlowStepError.invalid("'content' is not base64") }
            bytes = Array(decoded)
        }
        guard bytes.count <= Self.maxBytes else { throw FlowStepError.invalid("a document is at most \(Self.maxBytes) bytes") }
        if type == "application/pdf" {
            guard let engine else { throw FlowStepError.invalid("PDF extraction is not available here") }
            let document = bytes
            let pages: [PDFText.Page]
            do {
                pages = try await engine.run { try PDFText.pages(of: document) }
            } catch let failure as PDFText.Failure {
                throw FlowStepError.invalid(failure.description)
            }
            let text = pages.map(\.text).joined(separator: "\n\n")
            return FlowStepOutput([
                "text": .string(text), "content_type": .string(type), "characters": .number(Double(text.count)),
                "pages": .array(pages.map { ["page": .number(Double($0.number)), "text": .string($0.text)] }),
            ])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FlowStepError.invalid("the document is not UTF-8 text") }
        let extracted: String
        switch type {
        case "text/plain", "text/markdown": extracted = text
        case "text/html":
            // Up to 8 MiB of markup: engine work, off the cooperative pool where the threads exist.
            extracted = try await engine?.run { Self.htmlText(text) } ?? Self.htmlText(text)
        default: throw FlowStepError.invalid("content_type \(type) is not one extract reads (text/plain, text/markdown, text/html, application/pdf)")
        }
        return FlowStepOutput(["text": .string(extracted), "content_type": .string(type), "characters": .number(Double(extracted.count))])
    }

    /// Text of HTML: scripts and styles dropped, tags removed, entities for the five XML
    /// characters and spaces decoded, whitespace collapsed.
    static func htmlText(_ html: String) -> String {
        var text = html
        for tag in ["script", "style"] {
            while let open = text.range(of: "<\(tag)", options: .caseInsensitive),
                  let close = text.range(of: "</\(tag)>", options: .caseInsensitive, range: open.upperBound..<text.endIndex) {
                text.removeSubrange(open.lowerBound..<close.upperBound)
            }
        }
        var result = ""
        var inTag = false
        for character in text {
            if character == "<" { inTag = true; result.append(" "); continue }
            if character == ">" { inTag = false; continue }
            if !inTag { result.append(character) }
        }
        for (entity, character) in [("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")] {
            result = result.replacingOccurrences(of: entity, with: character)
        }
        return result.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

/// A response body's bytes (the chat pipeline answers flows' steps as it answers callers).
enum ResponseCollector {
    static let maxBytes = 16 << 20

    static func collect(_ body: ResponseBody) async throws -> [UInt8] {
        let writer = CollectingWriter()
        try await body.write(writer)
        return writer.box.bytes.withLock { $0 }
    }

    /// The bytes written so far: the writer is a value the body's `write` receives a copy of.
    final class Box: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }

    struct CollectingWriter: ResponseBodyWriter {
        let box = Box()

        mutating func write(_ buffer: ByteBuffer) async throws {
            try box.bytes.withLock { bytes in
                guard bytes.count + buffer.readableBytes <= ResponseCollector.maxBytes else { throw FlowStepError.invalid("the answer is too large") }
                bytes += buffer.readableBytesView
            }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
