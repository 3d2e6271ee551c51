import ConduitKit
import ConduitProtocol
import Foundation
import Providers

/// Makes a follow-up question ("and how long does it keep them?") searchable on its own.
///
/// Only a question that looks like it leans on earlier turns (short, or referring back with
/// "it", "that", "them"…) is rewritten, by one small model call; when that call fails or returns
/// nothing usable, the previous user question is put in front of the new one instead.
struct QueryRewriter: Sendable {
    let router: any ChatModels
    /// The model that rewrites; nil means the request's own model.
    let model: String?
    /// Where the rewrite's own usage event goes (kind `rewrite`): the tenant pays for it.
    let usage: any UsageRecorder

    static let referringWords: Set<String> = [
        "it", "its", "it's", "they", "them", "their", "this", "that", "these", "those", "he", "she", "him",
        "her", "his", "there", "former", "latter", "same", "also", "else", "more", "other", "another",
    ]

    /// Whether `question` needs the conversation to be understood.
    static func needsRewrite(_ question: String, history: [ChatMessage]) -> Bool {
        guard history.contains(where: { $0.role == "user" || $0.role == "assistant" }) else { return false }
        let words = question.lowercased().split(whereSeparator: { !$0.isLetter && $0 != "'" }).map(String.init)
        if words.count <= 4 { return true }
        if let first = words.first, ["and", "but", "so", "what", "how"].contains(first), words.count <= 6 { return true }
        return words.contains(where: referringWords.contains)
    }

    /// The standalone query, and whether the model wrote it.
    func rewrite(_ question: String, history: [ChatMessage], requestModel: String, billing: UsageEvent) async -> (query: String, rewritten: Bool) {
        let turns = history.filter { $0.role == "user" || $0.role == "assistant" }.suffix(6)
        let transcript = turns.map { "\($0.role): \($0.content?.plainText ?? "")" }.joined(separator: "\n")
        var request = ChatCompletionRequest(model: model ?? requestModel, messages: [
            .system("Rewrite the user's last question as one standalone search query that needs no conversation to be understood. Reply with the query only."),
            .user("Conversation:\n\(transcript)\n\nLast question: \(question)\n\nStandalone query:"),
        ])
        request.temperature = 0
        request.maxTokens = 64
        let started = ContinuousClock.now
        if let (completion, served) = try? await router.complete(request),
           let text = completion.choices.first?.message.content?.plainText {
            let tokens = completion.usage.map { ProviderUsage($0) } ?? TokenEstimate.usage(request: request, completionText: text)
            usage.record(billing.call(kind: "rewrite", model: request.model).finished(served: served, usage: tokens, started: started, firstToken: nil, status: "ok"))
            let line = text.split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespacesAndNewlines.union(["\""])) ?? ""
            if line.count >= 3, line.count <= 400 { return (line, true) }
        }
        let previous = history.last(where: { $0.role == "user" })?.content?.plainText ?? ""
        return ((previous + " " + question).trimmingCharacters(in: .whitespaces), false)
    }
}
