import ConduitProtocol
import Foundation
import HTTP
import Providers

/// Counts tokens the way the served model will: with its own tokenizer where the deployment
/// offers one (llama.cpp's `/tokenize`), otherwise with a conservative estimate that errs on the
/// side of more tokens, so a packed prompt never outgrows the context window.
struct TokenCounter: Sendable {
    /// Tokens a chat template adds around each message (role markers, separators).
    static let perMessageOverhead = 8

    let http: HTTPClient?
    let tokenizeURL: String?

    /// The counter for the deployment a request is expected to reach.
    init(deployment: Deployment?, http: HTTPClient) {
        self.http = http
        switch deployment?.tokenizer {
        case .llamaCpp?:
            let base = deployment!.baseURL
            tokenizeURL = (base.hasSuffix("/v1") ? String(base.dropLast(3)) : base) + "/tokenize"
        case nil:
            tokenizeURL = nil
        }
    }

    /// Estimates only.
    init() {
        http = nil
        tokenizeURL = nil
    }

    /// One count per text, asked for in parallel; a text the tokenizer cannot count is estimated.
    func count(_ texts: [String]) async -> [Int] {
        guard let http, let tokenizeURL else { return texts.map(Self.estimate) }
        return await withTaskGroup(of: (Int, Int).self) { group in
            for (index, text) in texts.enumerated() {
                group.addTask { (index, await Self.tokenize(text, url: tokenizeURL, http: http) ?? Self.estimate(text)) }
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

    /// One token per three UTF-8 bytes, rounded up: English runs at about four bytes a token
    /// with BPE tokenizers, so this overestimates, as a budget should.
    static func estimate(_ text: String) -> Int { (text.utf8.count + 2) / 3 }

    private static func tokenize(_ text: String, url: String, http: HTTPClient) async -> Int? {
        guard let body = try? JSONEncoder().encode(["content": text]) else { return nil }
        do {
            let response = try await http.execute(HTTPRequest(
                method: "POST", url: url, headers: [("Content-Type", "application/json")], body: Array(body), timeout: .seconds(5)))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            guard response.status == 200 else { return nil }
            return JSONValue.parse(bytes)?["tokens"]?.arrayValue?.count
        } catch {
            return nil
        }
    }
}
