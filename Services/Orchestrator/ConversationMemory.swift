import ConduitKit
import ConduitProtocol
import Logging
import Providers

/// Conversation memory around one chat request: the stored history goes in front of the new
/// messages, the new turn is stored after the answer, and when the history outgrows its share
/// of the context window the older turns are summarised by a model call after the response.
struct ConversationMemory: Sendable {
    struct Configuration: Sendable {
        /// Share of the context window (after the completion's reserve) history may fill. Default 0.5.
        var historyShare: Double = 0.5
        /// Latest messages never summarised. Default 4 (two exchanges).
        var keepMessages: Int = 4
        /// The model that summarises; nil means the request's model.
        var summaryModel: String?
    }

    let store: any SessionStore
    let router: any ChatModels
    let configuration: Configuration
    /// Where a summary's own usage event goes (kind `summary`): the tenant pays for it.
    let usage: any UsageRecorder
    let logger: Logger

    struct Recalled: Sendable {
        /// What goes to the model: the request's system messages, the history, the new messages.
        var messages: [ChatMessage]
        /// The new messages to store after the answer.
        var newMessages: [ChatMessage]
        /// History messages left out of this request to fit (a summary is on its way).
        var dropped: Int
    }

    func historyBudget(window: Int, completion: Int) -> Int {
        Int(configuration.historyShare * Double(max(0, window - completion)))
    }

    func recall(_ messages: [ChatMessage], tenant: String, session: String, counter: TokenCounter, budget: Int) async throws -> Recalled {
        let stored = try await store.load(tenant: tenant, id: session).messages
        let system = messages.prefix { $0.role == "system" }
        let new = Array(messages.dropFirst(system.count))
        var history = stored
        var dropped = 0
        // Over budget (the summary of an earlier turn may still be running): leave out the oldest
        // turns for this request, never the summary and never the latest messages.
        var tokens = await counter.count(messages: history)
        while tokens > budget, let oldest = history.firstIndex(where: { $0.name != Sessions.summaryName }),
              history.count - oldest > configuration.keepMessages {
            tokens -= await counter.count(messages: [history[oldest]])
            history.remove(at: oldest)
            dropped += 1
        }
        return Recalled(messages: Array(system) + history + new, newMessages: new, dropped: dropped)
    }

    /// Stores the turn, then summarises in the background when the history is over budget.
    func remember(_ recalled: Recalled, answer: ChatMessage, tenant: String, session: String, counter: TokenCounter, budget: Int, requestModel: String,
                  billing: UsageEvent) async {
        do {
            try await store.append(recalled.newMessages + [answer], tenant: tenant, id: session)
        } catch {
            logger.warning("session not stored", metadata: [LogKey.error: "\(error)"])
            return
        }
        let memory = self
        Task {
            do {
                try await memory.summariseIfNeeded(tenant: tenant, session: session, counter: counter, budget: budget, requestModel: requestModel, billing: billing)
            } catch {
                memory.logger.warning("session summary failed", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    /// Replaces all but the latest messages by a summary once the history passes `budget`.
    /// Returns whether it did.
    @discardableResult
    func summariseIfNeeded(tenant: String, session: String, counter: TokenCounter, budget: Int, requestModel: String, billing: UsageEvent) async throws -> Bool {
        let stored = try await store.load(tenant: tenant, id: session)
        guard stored.messages.count > configuration.keepMessages,
              await counter.count(messages: stored.messages) > budget else { return false }
        let older = stored.messages.count - configuration.keepMessages
        let transcript = stored.messages.prefix(older).map { message in
            message.name == Sessions.summaryName
                ? "Summary so far: \(message.content?.plainText ?? "")"
                : "\(message.role): \(message.content?.plainText ?? "")"
        }.joined(separator: "\n")
        // The summary may use at most a third of the history budget.
        let summaryTokens = max(32, budget / 3)
        var request = ChatCompletionRequest(model: configuration.summaryModel ?? requestModel, messages: [
            .system("Summarise the conversation below for the assistant's memory: keep names, numbers, decisions, facts the user stated and open questions. Write plain sentences, at most \(summaryTokens * 3 / 4) words."),
            .user(transcript),
        ])
        request.temperature = 0
        request.maxTokens = summaryTokens
        let started = ContinuousClock.now
        let (completion, served) = try await router.complete(request)
        var summary = completion.choices.first?.message.content?.plainText ?? ""
        let tokens = completion.usage.map { ProviderUsage($0) } ?? TokenEstimate.usage(request: request, completionText: summary)
        usage.record(billing.call(kind: "summary", model: request.model).finished(served: served, usage: tokens, started: started, firstToken: nil, status: "ok"))
        // Never let a wordy summary undo the point of summarising.
        while await counter.count(summary) > summaryTokens, summary.count > 16 {
            summary = String(summary.prefix(summary.count * 3 / 4))
        }
        guard !summary.isEmpty else { return false }
        let compacted = try await store.compact(
            replacing: Array(stored.raw.prefix(older)), with: "Summary of the earlier conversation: " + summary, tenant: tenant, id: session)
        logger.info("session summarised", metadata: ["messages": "\(older)", "applied": "\(compacted)"])
        return compacted
    }
}
