import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Providers

/// `POST /v1/chat/completions` and `GET /v1/models` with OpenAI's semantics: JSON or an SSE
/// stream of `chat.completion.chunk`s ending in `data: [DONE]`. The request is decoded,
/// validated and given its defaults here; `ChatPipeline` takes it through the stages.
struct ChatController: Sendable {
    let pipeline: ChatPipeline
    let tokenizer: any Tokenizer

    var models: any ChatModels { pipeline.models }

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
        ModelList(data: models.availableModels.map { .init(id: $0.name, created: $0.created, ownedBy: $0.ownedBy) }
            + models.availableRouters.map { .init(id: $0.name, created: 0, ownedBy: "conduit") })
    }

    func complete(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let body = try await request.decodeJSON(ChatCompletionRequest.self, context: context)
        return try await complete(body, headers: request.headers, context: context, started: started)
    }

    /// A decoded request through the pipeline: validation, the caller's and model's defaults,
    /// the usage event (attributed to the caller; `flowRun` tags it with the flow run it is a
    /// step of). Flows' `chat` steps come in here too.
    func complete(_ request: ChatCompletionRequest, headers: HTTPFields, context: ConduitRequestContext, started: ContinuousClock.Instant = .now,
                  flowRun: (flow: String, run: String)? = nil) async throws -> Response {
        var body = request
        try ChatRequestValidation.validate(body)
        let caller = try context.caller()
        body.conduit = Self.withDefaults(body.conduit, key: caller.chatDefaults, model: models.catalog.model(named: body.model))
        var billing = UsageEvent(
            requestID: context.requestID, tenant: caller.tenant,
            kind: "chat", model: body.model, promptTokens: 0, completionTokens: 0, status: "ok", timestamp: Date())
        billing.attribute(to: caller, user: body.user)
        billing.cacheHit = false
        billing.flow = flowRun?.flow
        billing.flowRunID = flowRun?.run
        let primary = models.primaryDeployment(for: body.model)
        let turn = ChatTurn(
            request: body, tenant: caller.tenant, requestHeaders: headers, primary: primary,
            counter: TokenCounter(deployment: primary, tokenizer: tokenizer), billing: billing, started: started)
        return try await pipeline.run(turn, context: context)
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
}
