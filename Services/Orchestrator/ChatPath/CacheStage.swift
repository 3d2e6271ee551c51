import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Providers

/// The semantic cache: a request that may use it (see `AnswerCache.bypassReason`) is answered
/// from it when a close enough question was answered in the same context; otherwise the
/// model's answer is stored, when the requested model gave it. `X-Conduit-Cache: hit|miss`
/// says which, with the similarity of the hit (or of the nearest entry on a miss).
struct CacheStage: ChatStage {
    let cache: AnswerCache
    let models: any ChatModels

    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
        guard cache.bypassReason(turn.body, options: turn.options) == nil else { return nil }
        guard let key = await cache.key(
            for: turn.body, messages: turn.body.messages, rag: turn.options?.rag, tenant: turn.tenant,
            modelThreshold: models.catalog.model(named: turn.body.model)?.cacheThreshold, context: context) else { return nil }
        turn.cacheKey = key
        let outcome = await cache.lookup(key)
        turn.responseHeaders[HTTPField.Name("X-Conduit-Cache")!] = outcome.completion == nil ? "miss" : "hit"
        if let similarity = outcome.similarity {
            turn.responseHeaders[HTTPField.Name("X-Conduit-Cache-Similarity")!] = String(format: "%.4f", similarity)
        }
        guard let cached = outcome.completion, let similarity = outcome.similarity else {
            turn.nearestCached = outcome.similarity
            return nil
        }
        return Self.answer(cached, similarity: similarity, turn: turn, requestID: context.requestID)
    }

    /// The cached completion as this request's: its own id and time, the hit in `conduit.cache`,
    /// billed at no cost.
    static func answer(_ cached: ChatCompletion, similarity: Double, turn: ChatTurn, requestID: String) -> StageAnswer {
        var completion = cached
        completion.id = "chatcmpl-" + requestID
        completion.created = Int(Date().timeIntervalSince1970)
        var info = cached.conduit ?? ConduitResponseInfo()
        info.cache = CacheInfo(hit: true, similarity: (similarity * 10_000).rounded() / 10_000)
        info.sessionID = turn.session
        completion.conduit = info
        var usage = turn.billing
        usage.cacheHit = true
        usage.servedModel = completion.model
        usage.promptTokens = completion.usage?.promptTokens ?? 0
        usage.completionTokens = completion.usage?.completionTokens ?? 0
        usage.costUSD = 0
        // What the model's answer would have cost again, at the expected deployment's prices.
        usage.savedUSD = completion.usage.flatMap { tokens in turn.primary.map { $0.prices.cost(of: ProviderUsage(tokens)) } }
        usage.latencyMilliseconds = UsageEvent.milliseconds(from: turn.started, to: .now)
        return StageAnswer(completion: completion, usage: usage)
    }

    func finish(_ turn: ChatTurn, answer: ChatAnswer) async {
        guard let key = turn.cacheKey, answer.servedModel == turn.body.model else { return }
        await cache.store(answer.completion, key: key)
    }
}
