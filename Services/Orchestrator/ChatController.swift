import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Providers

/// `POST /v1/chat/completions` and `GET /v1/models` with OpenAI's semantics: JSON or an SSE
/// stream of `chat.completion.chunk`s ending in `data: [DONE]`. Until the first chunk every
/// failure is an HTTP error with the envelope (the router retries and falls back meanwhile);
/// after it, a failure ends the stream with an error event.
struct ChatController: Sendable {
    let router: ProviderRouter
    let usage: UsageRecorder

    func addRoutes(to router: Router<ConduitRequestContext>) {
        router.post("/v1/chat/completions") { request, context in try await complete(request, context) }
        router.get("/v1/models") { _, _ in try jsonResponse(modelList()) }
        router.get("/v1/models/:model") { _, context in
            let name = context.parameters.get("model") ?? ""
            guard let model = modelList().data.first(where: { $0.id == name }) else {
                throw APIError(status: .notFound, type: .invalidRequest, message: "The model '\(name)' does not exist or you do not have access to it.", param: "model", code: "model_not_found")
            }
            return try jsonResponse(model)
        }
    }

    func modelList() -> ModelList {
        ModelList(data: router.availableModels.map { .init(id: $0.name, created: $0.created, ownedBy: $0.ownedBy) })
    }

    func complete(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let body = try await request.decodeJSON(ChatCompletionRequest.self, context: context)
        try ChatRequestValidation.validate(body)
        var event = UsageEvent(
            requestID: context.requestID, tenant: request.headers[HTTPField.Name(ConduitHeader.tenant)!] ?? "default",
            kind: "chat", model: body.model, promptTokens: 0, completionTokens: 0, status: "ok", timestamp: Date())
        event.keyID = request.headers[HTTPField.Name(ConduitHeader.keyID)!]
        event.cacheHit = false
        if body.stream == true {
            return try await stream(body, context: context, event: event, started: started)
        }
        do {
            let (completion, served) = try await router.complete(body)
            let tokens = completion.usage.map { ProviderUsage($0) } ?? TokenEstimate.usage(request: body, completionText: completion.choices.map { $0.message.content?.plainText ?? "" }.joined())
            usage.record(event.finished(served: served, usage: tokens, started: started, firstToken: nil, status: "ok"))
            var response = try jsonResponse(completion)
            response.headers[HTTPField.Name("X-Conduit-Deployment")!] = served.deployment.id
            return response
        } catch {
            usage.record(event.failed(error, started: started))
            throw ChatErrors.apiError(for: error)
        }
    }

    private func stream(_ body: ChatCompletionRequest, context: ConduitRequestContext, event: UsageEvent, started: ContinuousClock.Instant) async throws -> Response {
        let opened: (ProviderStream, ProviderRouter.Served)
        do {
            opened = try await router.stream(body)
        } catch {
            usage.record(event.failed(error, started: started))
            throw ChatErrors.apiError(for: error)
        }
        let (chunks, served) = opened
        let includeUsage = body.streamOptions?.includeUsage == true
        let recorder = usage
        let logger = context.logger
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Conduit-Deployment")!] = served.deployment.id
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var output = SSEOutput(writer: writer)
            var firstToken: ContinuousClock.Instant?
            var generated = 0
            var reported: ProviderUsage?
            var stamp: ChatCompletionChunk?
            do {
                for try await item in chunks {
                    switch item {
                    case .chunk(let chunk):
                        stamp = stamp ?? chunk
                        for choice in chunk.choices {
                            generated += choice.delta.content?.count ?? 0
                            generated += choice.delta.toolCalls?.reduce(0) { $0 + ($1.function?.arguments?.count ?? 0) } ?? 0
                        }
                        if firstToken == nil, chunk.choices.contains(where: { !($0.delta.content ?? "").isEmpty || $0.delta.toolCalls != nil }) {
                            firstToken = .now
                        }
                        try await output.send(chunk)
                    case .finished(let tokens):
                        reported = tokens
                    }
                }
                let tokens = reported ?? TokenEstimate.usage(request: body, characters: generated)
                if includeUsage, let stamp {
                    try await output.send(ChatCompletionChunk(id: stamp.id, created: stamp.created, model: stamp.model, choices: [], usage: Usage(tokens)))
                }
                try await output.done()
                recorder.record(event.finished(served: served, usage: tokens, started: started, firstToken: firstToken, status: "ok"))
            } catch let error as SSEOutput.ClientGone {
                chunks.cancel()
                recorder.record(event.finished(served: served, usage: TokenEstimate.usage(request: body, characters: generated), started: started, firstToken: firstToken, status: "client_closed"))
                logger.info("client closed the stream; upstream cancelled")
                throw error
            } catch {
                // Bytes have reached the client: the status is sent, so the failure travels as an event.
                let apiError = ChatErrors.apiError(for: error)
                logger.warning("stream failed after its first chunk", metadata: [LogKey.error: "\(error)", "deployment": "\(served.deployment.id)"])
                recorder.record(event.finished(served: served, usage: TokenEstimate.usage(request: body, characters: generated), started: started, firstToken: firstToken, status: apiError.envelope.error.type))
                try? await output.fail(apiError.envelope)
            }
        })
    }
}

/// Writes SSE frames, telling a vanished client apart from a failing upstream.
struct SSEOutput {
    struct ClientGone: Error {}

    var writer: any ResponseBodyWriter
    private let encoder = WireCoding.encoder()

    init(writer: any ResponseBodyWriter) { self.writer = writer }

    mutating func send(_ chunk: ChatCompletionChunk) async throws {
        try await write("data: " + String(decoding: try encoder.encode(chunk), as: UTF8.self) + "\n\n")
    }

    mutating func done() async throws {
        try await write("data: [DONE]\n\n")
        do { try await writer.finish(nil) } catch { throw ClientGone() }
    }

    /// The error frame the OpenAI SDK raises as `APIError`, then the end of the body.
    mutating func fail(_ envelope: ErrorEnvelope) async throws {
        try await write("data: " + String(decoding: try encoder.encode(envelope), as: UTF8.self) + "\n\n")
        do { try await writer.finish(nil) } catch { throw ClientGone() }
    }

    private mutating func write(_ text: String) async throws {
        do { try await writer.write(ByteBuffer(string: text)) } catch { throw ClientGone() }
    }
}

extension UsageEvent {
    func finished(served: ProviderRouter.Served, usage: ProviderUsage, started: ContinuousClock.Instant, firstToken: ContinuousClock.Instant?, status: String) -> UsageEvent {
        var event = self
        event.servedModel = served.model
        event.deployment = served.deployment.id
        event.provider = served.deployment.provider.rawValue
        event.promptTokens = usage.promptTokens
        event.completionTokens = usage.completionTokens
        event.cachedTokens = usage.cachedTokens
        event.reasoningTokens = usage.reasoningTokens
        event.costUSD = served.deployment.prices.cost(of: usage)
        event.latencyMilliseconds = Self.milliseconds(from: started, to: .now)
        event.timeToFirstTokenMilliseconds = firstToken.map { Self.milliseconds(from: started, to: $0) }
        event.status = status
        return event
    }

    func failed(_ error: any Error, started: ContinuousClock.Instant) -> UsageEvent {
        var event = self
        event.status = ChatErrors.apiError(for: error).envelope.error.type
        if let error = error as? ProviderError { event.deployment = error.deployment }
        event.latencyMilliseconds = Self.milliseconds(from: started, to: .now)
        return event
    }

    static func milliseconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Int {
        let duration = end - start
        return Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
