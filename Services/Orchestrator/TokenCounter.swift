import ConduitProtocol
import Foundation
import Providers

/// Counts tokens the way the served model will: with its own tokenizer where the deployment
/// offers one (llama.cpp's `/tokenize`), otherwise with a conservative estimate that errs on the
/// side of more tokens, so a packed prompt never outgrows the context window.
struct TokenCounter: Sendable {
    /// Tokens a chat template adds around each message (role markers, separators).
    static let perMessageOverhead = 8

    /// The deployment's own tokenizer, when it has one.
    let tokenizer: (any Tokenizer)?
    let deployment: Deployment?

    /// The counter for the deployment a request is expected to reach.
    init(deployment: Deployment?, tokenizer: any Tokenizer) {
        self.deployment = deployment
        self.tokenizer = deployment?.tokenizer == nil ? nil : tokenizer
    }

    /// Estimates only.
    init() {
        deployment = nil
        tokenizer = nil
    }

    /// One count per text, asked for in parallel; a text the tokenizer cannot count is estimated.
    func count(_ texts: [String]) async -> [Int] {
        guard let tokenizer, let deployment else { return texts.map(Self.estimate) }
        return await withTaskGroup(of: (Int, Int).self) { group in
            for (index, text) in texts.enumerated() {
                group.addTask { (index, await tokenizer.count(text, deployment: deployment) ?? Self.estimate(text)) }
            }
            var counts = [Int](repeating: 0, count: texts.count)
            for await (index, count) in group { counts[index] = count }
            return counts
        }
    }

    func count(_ text: String) async -> Int { await count([text])[0] }

    /// Tokens of whole messages, template overhead included.
    func count(messages: [ChatMessage]) async -> Int {
        let counts = await count(messages.map { $0.content?.plainText ?? "" })
        return counts.reduce(0, +) + messages.count * Self.perMessageOverhead
    }

    /// A prompt's tokens by `estimate`, each message's template included.
    static func estimatePrompt(_ messages: [ChatMessage]) -> Int {
        messages.reduce(0) { $0 + estimate($1.content?.plainText ?? "") } + messages.count * perMessageOverhead
    }

    /// One token per three UTF-8 bytes, rounded up: English runs at about four bytes a token
    /// with BPE tokenizers, so this overestimates, as a budget should.
    static func estimate(_ text: String) -> Int { (text.utf8.count + 2) / 3 }
}
