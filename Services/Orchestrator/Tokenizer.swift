import ConduitProtocol
import Foundation
import HTTP
import Providers

/// A model server's own tokenizer, asked by `TokenCounter` for the deployments that offer one.
protocol Tokenizer: Sendable {
    /// Tokens of `text` by `deployment`'s tokenizer; nil when it cannot say (the counter estimates).
    func count(_ text: String, deployment: Deployment) async -> Int?
}

/// llama.cpp's `POST /tokenize` (`{"content": …}` → `{"tokens": […]}`) next to the deployment's
/// OpenAI-compatible `/v1`.
struct LlamaCppTokenizer: Tokenizer {
    let http: HTTPClient

    static func url(for deployment: Deployment) -> String {
        let base = deployment.baseURL
        return (base.hasSuffix("/v1") ? String(base.dropLast(3)) : base) + "/tokenize"
    }

    func count(_ text: String, deployment: Deployment) async -> Int? {
        guard deployment.tokenizer == .llamaCpp, let body = try? JSONEncoder().encode(["content": text]) else { return nil }
        do {
            let response = try await http.execute(HTTPRequest(
                method: "POST", url: Self.url(for: deployment), headers: [("Content-Type", "application/json")], body: Array(body), timeout: .seconds(5)))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            guard response.status == 200 else { return nil }
            return JSONValue.parse(bytes)?["tokens"]?.arrayValue?.count
        } catch {
            return nil
        }
    }
}
