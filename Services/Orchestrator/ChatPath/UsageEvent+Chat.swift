import ConduitKit
import ConduitProtocol
import Foundation
import Providers

/// The usage events of the chat path.
extension UsageEvent {
    func finished(served: ProviderRouter.Served, usage: ProviderUsage, started: ContinuousClock.Instant, firstToken: ContinuousClock.Instant?, status: String) -> UsageEvent {
        var event = self
        event.servedModel = served.model
        event.deployment = served.deployment.id
        event.provider = served.deployment.provider.rawValue
        event.tier = served.deployment.tier
        // A router's reason stands (`RoutingStage`); otherwise the caller's model served it, or a fallback did.
        event.selectionReason = event.selectionReason ?? (served.model == model ? "requested" : "fallback")
        event.promptTokens = usage.promptTokens
        event.completionTokens = usage.completionTokens
        event.cachedTokens = usage.cachedTokens
        event.reasoningTokens = usage.reasoningTokens
        event.costUSD = served.deployment.prices.cost(of: usage)
        event.usageEstimated = usage.estimated ? true : nil
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
        event.team = team
        event.user = user
        event.tags = tags
        event.flow = flow
        event.flowRunID = flowRunID
        event.cacheHit = false
        return event
    }

    static func milliseconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Int {
        let duration = end - start
        return Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
