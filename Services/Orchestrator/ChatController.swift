import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Providers
import HTTP

/// `POST /v1/chat/completions` and `GET /v1/models` with OpenAI's semantics: JSON or an SSE
/// stream of `chat.completion.chunk`s ending in `data: [DONE]`. Until the first chunk every
/// failure is an HTTP error with the envelope (the router retries and falls back meanwhile);
/// after it, a failure ends the stream with an error event.
///
/// Around the provider call, in order: the session's history goes in front of the new messages,
/// the semantic cache may answer, retrieval adds numbered sources; after it, citations are
/// worked out, the answer is cached and the turn stored in the session.
struct ChatController: Sendable {
    let router: ProviderRouter
    let usage: UsageOutbox
    let http: HTTPClient
    let augmenter: RetrievalAugmenter
    let memory: ConversationMemory
    let cache: AnswerCache

    static let sessionHeader = "X-Conduit-Session-Id"
    /// `X-Conduit-Session: user` makes the request's `user` field the session id.
    static let sessionFromUserHeader = "X-Conduit-Session"

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/chat/completions") { request, context in try await complete(request, context) }
        router.get("/v1/models") { _, _ in try jsonResponse(modelList()) }
        router.get("/v1/models/:model") { _, context in
            let name = try context.pathParameter("model")
            guard let model = modelList().data.first(where: { $0.id == name }) else {
                throw APIError(status: .notFound, type: .invalidRequest, message: "The model '\(name)' does not exist or you do not have access to it.", param: "model", code: "model_not_found")
            }
            return try jsonResponse(model)
        }
    }

    func modelList() -> ModelList {
        ModelList(data: router.availableModels.map { .init(id: $0.name, created: $0.created, ownedBy: $0.ownedBy) })
    }

    /// Everything decided before the provider call.
    struct Plan: Sendable {
        var body: ChatCompletionRequest
        var tenant: String
        /// The deployment the request is expected to reach: its context window and tokenizer.
        var primary: Deployment?
        var session: String?
        var recalled: ConversationMemory.Recalled?
        var historyBudget: Int
        var counter: TokenCounter
        var rag: RetrievalAugmenter.Prepared?
        var cacheKey: AnswerCache.Key?
        /// On a cache miss, the similarity of the nearest cached question (for the response header).
        var nearestCached: Double?
        /// The request's usage event as first made: the model calls made for it (a summary) bill
        /// the same tenant and key under the same request id.
        var billing: UsageEvent

        /// The response's `conduit` object, when retrieval or a session was involved.
        func info(answer: String) -> ConduitResponseInfo? {
            guard rag != nil || session != nil else { return nil }
            var info = rag?.info(answer: answer) ?? ConduitResponseInfo()
            info.sessionID = session
            return info
        }
    }

    func complete(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        var body = try await request.decodeJSON(ChatCompletionRequest.self, context: context)
        try ChatRequestValidation.validate(body)
        let caller = try context.caller()
        body.conduit = Self.withDefaults(body.conduit, key: caller.chatDefaults, model: router.catalog.model(named: body.model))
        let tenant = caller.tenant
        var event = UsageEvent(
            requestID: context.requestID, tenant: tenant,
            kind: "chat", model: body.model, promptTokens: 0, completionTokens: 0, status: "ok", timestamp: Date())
        event.keyID = caller.keyID
        event.cacheHit = false
        var plan: Plan
        do {
            if let options = body.conduit?.rag { try RetrievalAugmenter.validate(options) }
            plan = try await recall(body, request: request, tenant: tenant, billing: event, context: context)
            if let key = plan.cacheKey {
                let outcome = await cache.lookup(key)
                if let cached = outcome.completion, let similarity = outcome.similarity {
                    return try await answerFromCache(cached, similarity: similarity, plan: plan, context: context, event: event, started: started)
                }
                plan.nearestCached = outcome.similarity
            }
            if let options = body.conduit?.rag {
                let budget = RetrievalAugmenter.Budget(window: Self.window(plan), completion: Self.completionReserve(plan))
                let prepared = try await augmenter.prepare(
                    plan.body.messages, options: options, requestModel: body.model, tenant: tenant,
                    counter: plan.counter, budget: budget, context: context, billing: event)
                plan.rag = prepared
                plan.body.messages = prepared.messages
            }
        } catch {
            usage.record(event.failed(error, started: started))
            throw ChatErrors.apiError(for: error)
        }
        if body.stream == true {
            return try await stream(plan, context: context, event: event, started: started)
        }
        do {
            var (completion, served) = try await router.complete(plan.body)
            let answer = completion.choices.first?.message.content?.plainText ?? ""
            let tokens = completion.usage.map { ProviderUsage($0) } ?? TokenEstimate.usage(request: plan.body, completionText: answer)
            completion.conduit = plan.info(answer: answer)
            usage.record(event.finished(served: served, usage: tokens, started: started, firstToken: nil, status: "ok"))
            await finish(plan, completion: completion, servedModel: served.model)
            var response = try jsonResponse(completion)
            response.headers[HTTPField.Name("X-Conduit-Deployment")!] = served.deployment.id
            Self.setHeaders(&response.headers, plan: plan, hit: false)
            return response
        } catch {
            usage.record(event.failed(error, started: started))
            throw ChatErrors.apiError(for: error)
        }
    }

    /// The session's history, the token counter and budgets, and the cache key.
    private func recall(_ body: ChatCompletionRequest, request: Request, tenant: String, billing: UsageEvent, context: ConduitRequestContext) async throws -> Plan {
        var providerBody = body
        providerBody.conduit = nil
        var session = body.conduit?.sessionID
        var sessionParam = "conduit.session_id"
        if session == nil, let header = request.headers[HTTPField.Name(Self.sessionHeader)!] {
            session = header
            sessionParam = Self.sessionHeader
        }
        if session == nil, request.headers[HTTPField.Name(Self.sessionFromUserHeader)!]?.lowercased() == "user" {
            session = body.user
            sessionParam = "user"
        }
        if let session { try SessionStore.validate(session, param: sessionParam) }
        let primary = router.catalog.route(for: body.model, keys: router.client.keys).first?.deployment
        let counter = TokenCounter(deployment: primary, http: http)
        var plan = Plan(body: providerBody, tenant: tenant, primary: primary, session: session, historyBudget: 0, counter: counter, billing: billing)
        plan.historyBudget = memory.historyBudget(window: Self.window(plan), completion: Self.completionReserve(plan))
        if let session {
            let recalled = try await memory.recall(body.messages, tenant: tenant, session: session, counter: counter, budget: plan.historyBudget)
            plan.recalled = recalled
            plan.body.messages = recalled.messages
        }
        if cache.bypassReason(plan.body, options: body.conduit) == nil {
            let rag = body.conduit?.rag
            plan.cacheKey = await cache.key(
                for: plan.body, messages: plan.body.messages, rag: rag, tenant: tenant,
                modelThreshold: router.catalog.model(named: body.model)?.cacheThreshold, context: context)
        }
        return plan
    }

    /// The request's own `conduit` settings, then its key's defaults (set by the gateway from
    /// `gateway.api_keys.chat_defaults`), then its model's (`rag:` in the catalog).
    static func withDefaults(_ own: ConduitOptions?, key: String?, model: CatalogModel?) -> ConduitOptions? {
        let keyDefaults = key.flatMap { try? JSONDecoder().decode(ConduitOptions.self, from: Data($0.utf8)) }
        guard own != nil || keyDefaults != nil || model?.defaultRAG != nil else { return nil }
        var options = own ?? ConduitOptions()
        options.rag = options.rag ?? keyDefaults?.rag ?? model?.defaultRAG
        options.cache = options.cache ?? keyDefaults?.cache
        return options
    }

    /// The context window of the expected deployment (8,192 when the catalog does not say).
    private static func window(_ plan: Plan) -> Int { plan.primary?.contextWindow ?? 8192 }

    /// Tokens kept for the answer: the request's limit, else the deployment's default, at most
    /// half the window.
    private static func completionReserve(_ plan: Plan) -> Int {
        min(plan.body.completionTokenLimit ?? plan.primary?.defaultMaxTokens ?? 1024, window(plan) / 2)
    }

    /// After an answer: cache it (only when the requested model served it) and store the turn,
    /// both before answering — a millisecond or two beside the model call — so the client's
    /// next request finds them.
    private func finish(_ plan: Plan, completion: ChatCompletion, servedModel: String) async {
        if let key = plan.cacheKey, servedModel == plan.body.model {
            await cache.store(completion, key: key)
        }
        if let session = plan.session, let recalled = plan.recalled, let message = completion.choices.first?.message {
            var answer = message
            answer.refusal = nil
            await memory.remember(recalled, answer: answer, tenant: plan.tenant, session: session, counter: plan.counter,
                                  budget: plan.historyBudget, requestModel: plan.body.model, billing: plan.billing)
        }
    }

    /// `X-Conduit-Cache: hit|miss` when the cache was asked, with the similarity of the hit (or
    /// of the nearest entry on a miss); the session id when there is one.
    static func setHeaders(_ headers: inout HTTPFields, plan: Plan, hit: Bool) {
        if plan.cacheKey != nil {
            headers[HTTPField.Name("X-Conduit-Cache")!] = hit ? "hit" : "miss"
            if let similarity = plan.nearestCached {
                headers[HTTPField.Name("X-Conduit-Cache-Similarity")!] = String(format: "%.4f", similarity)
            }
        }
        if let session = plan.session { headers[HTTPField.Name(sessionHeader)!] = session }
    }

    private func answerFromCache(_ cached: ChatCompletion, similarity: Double, plan: Plan, context: ConduitRequestContext, event: UsageEvent, started: ContinuousClock.Instant) async throws -> Response {
        var completion = cached
        completion.id = "chatcmpl-" + context.requestID
        completion.created = Int(Date().timeIntervalSince1970)
        var info = cached.conduit ?? ConduitResponseInfo()
        info.cache = CacheInfo(hit: true, similarity: (similarity * 10_000).rounded() / 10_000)
        info.sessionID = plan.session
        completion.conduit = info
        var finished = event
        finished.cacheHit = true
        finished.servedModel = completion.model
        finished.promptTokens = completion.usage?.promptTokens ?? 0
        finished.completionTokens = completion.usage?.completionTokens ?? 0
        finished.costUSD = 0
        finished.latencyMilliseconds = UsageEvent.milliseconds(from: started, to: .now)
        usage.record(finished)
        await finish(plan, completion: completion, servedModel: "")
        var headers = HTTPFields()
        var served = plan
        served.nearestCached = similarity
        Self.setHeaders(&headers, plan: served, hit: true)
        guard plan.body.stream == true else {
            var response = try jsonResponse(completion)
            for field in headers { response.headers.append(field) }
            return response
        }
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let replay = CacheReplay.chunks(of: completion, includeUsage: plan.body.streamOptions?.includeUsage == true)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var output = SSEOutput(writer: writer)
            for chunk in replay { try await output.send(chunk) }
            try await output.done()
        })
    }

    private func stream(_ plan: Plan, context: ConduitRequestContext, event: UsageEvent, started: ContinuousClock.Instant) async throws -> Response {
        let body = plan.body
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
        let controller = self
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Conduit-Deployment")!] = served.deployment.id
        Self.setHeaders(&headers, plan: plan, hit: false)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var output = SSEOutput(writer: writer)
            var firstToken: ContinuousClock.Instant?
            var answer = ""
            var generated = 0
            var calledTools = false
            var finishReason: String?
            var reported: ProviderUsage?
            var stamp: ChatCompletionChunk?
            // The chunk with the finish reason is held back until the stream ends, so the
            // `conduit` object can ride on it rather than on a chunk clients do not expect.
            var finishing: ChatCompletionChunk?
            do {
                for try await item in chunks {
                    switch item {
                    case .chunk(let chunk):
                        stamp = stamp ?? chunk
                        if let held = finishing {
                            try await output.send(held)
                            finishing = nil
                        }
                        for choice in chunk.choices {
                            answer += choice.delta.content ?? ""
                            generated += choice.delta.content?.count ?? 0
                            generated += choice.delta.toolCalls?.reduce(0) { $0 + ($1.function?.arguments?.count ?? 0) } ?? 0
                            calledTools = calledTools || choice.delta.toolCalls != nil
                            finishReason = choice.finishReason ?? finishReason
                        }
                        if firstToken == nil, chunk.choices.contains(where: { !($0.delta.content ?? "").isEmpty || $0.delta.toolCalls != nil }) {
                            firstToken = .now
                        }
                        if chunk.choices.contains(where: { $0.finishReason != nil }) {
                            finishing = chunk
                        } else {
                            try await output.send(chunk)
                        }
                    case .finished(let tokens):
                        reported = tokens
                    }
                }
                let tokens = reported ?? TokenEstimate.usage(request: body, characters: generated)
                let info = plan.info(answer: answer)
                if var held = finishing {
                    held.conduit = info
                    try await output.send(held)
                }
                if let stamp, includeUsage {
                    var last = ChatCompletionChunk(id: stamp.id, created: stamp.created, model: stamp.model, choices: [], usage: Usage(tokens))
                    // A stream without a finish reason still reports what it retrieved.
                    if finishing == nil { last.conduit = info }
                    try await output.send(last)
                }
                try await output.done()
                recorder.record(event.finished(served: served, usage: tokens, started: started, firstToken: firstToken, status: "ok"))
                if let stamp, !calledTools {
                    var completion = ChatCompletion(
                        id: stamp.id, created: stamp.created, model: stamp.model,
                        choices: [.init(index: 0, message: .assistant(answer), finishReason: finishReason ?? "stop")], usage: Usage(tokens))
                    completion.conduit = info
                    await controller.finish(plan, completion: completion, servedModel: served.model)
                }
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

    /// Another model call made for the same request (a query rewrite, a summary): same request
    /// id, tenant and key, an id of its own.
    func call(kind: String, model: String) -> UsageEvent {
        var event = UsageEvent(requestID: requestID, tenant: tenant, kind: kind, model: model, promptTokens: 0, completionTokens: 0, status: "ok", timestamp: Date())
        event.keyID = keyID
        event.cacheHit = false
        return event
    }

    static func milliseconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Int {
        let duration = end - start
        return Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
