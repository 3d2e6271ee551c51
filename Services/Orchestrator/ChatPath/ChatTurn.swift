import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Providers

/// One chat request on its way through the stages: what the caller sent, what will go to the
/// model, and what each stage has found out. Every stage reads and adds to the same turn.
struct ChatTurn: Sendable {
    /// The request as the caller sent it, its `conduit` options filled in from the key's and the
    /// model's defaults.
    let request: ChatCompletionRequest
    /// What goes to the model: the request without `conduit`, its messages grown by the stages
    /// (history in front, sources in the system prompt).
    var body: ChatCompletionRequest
    let tenant: String
    /// The caller's request headers (a session may be named by a header).
    let requestHeaders: HTTPFields
    /// The deployment the request is expected to reach: its context window and tokenizer.
    var primary: Deployment?
    var counter: TokenCounter
    let started: ContinuousClock.Instant
    /// The request's usage event as first made (and attributed by the stages: the prompt
    /// version): model calls made for it (a rewrite, a summary) bill the same tenant and key
    /// under the same request id.
    var billing: UsageEvent

    /// The session the turn belongs to (`SessionStage`).
    var session: String?
    var recalled: ConversationMemory.Recalled?
    /// Tokens the session's history may fill.
    var historyBudget = 0
    /// The semantic cache's key, when the request may use the cache (`CacheStage`).
    var cacheKey: AnswerCache.Key?
    /// On a cache miss, the similarity of the nearest cached question.
    var nearestCached: Double?
    /// The sources retrieval put in the prompt (`RetrievalStage`).
    var rag: RetrievalAugmenter.Prepared?
    /// The model a router chose, and why (`RoutingStage`).
    var routing: RoutingInfo?
    /// What the request holds against its budgets (`BudgetStage`).
    var budgetHold: BudgetStage.Hold?
    /// The prompt template the request was rendered from (`PromptStage`).
    var prompt: PromptInfo?
    /// Headers the stages add to the response.
    var responseHeaders = HTTPFields()

    var options: ConduitOptions? { request.conduit }

    /// The gateway asked for the stream's token count (`ConduitHeader.reportUsage`).
    var reportsUsage: Bool { requestHeaders[HTTPField.Name(ConduitHeader.reportUsage)!] != nil }

    init(request: ChatCompletionRequest, tenant: String, requestHeaders: HTTPFields, primary: Deployment?, counter: TokenCounter,
         billing: UsageEvent, started: ContinuousClock.Instant = .now) {
        self.request = request
        var body = request
        body.conduit = nil
        self.body = body
        self.tenant = tenant
        self.requestHeaders = requestHeaders
        self.primary = primary
        self.counter = counter
        self.billing = billing
        self.started = started
    }

    /// The context window of the expected deployment (8,192 when the catalog does not say).
    var window: Int { primary?.contextWindow ?? 8192 }

    /// Tokens kept for the answer: the request's limit, else the deployment's default, at most
    /// half the window.
    var completionReserve: Int { min(body.completionTokenLimit ?? primary?.defaultMaxTokens ?? 1024, window / 2) }

    /// The response's `conduit` object, when retrieval, a session or a router was involved.
    func info(answer: String) -> ConduitResponseInfo? {
        guard rag != nil || session != nil || routing != nil || prompt != nil else { return nil }
        var info = rag?.info(answer: answer) ?? ConduitResponseInfo()
        info.sessionID = session
        info.routing = routing
        info.prompt = prompt
        return info
    }
}
