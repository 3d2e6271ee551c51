import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import Hummingbird
import Prometheus
import TestSupport

/// The internal services: each call is written down; the orchestrator answers JSON, or an event
/// stream on `/v1/chat/completions` when the body asks for one; the retriever is unreachable.
final class FakeServices: ServiceForwarding {
    struct Call {
        var service: ServiceName
        var method: String
        var path: String
        var body: [UInt8]?
        var headers: [String: String]
    }
    private let calls = Locked<[Call]>([])
    /// Tokens the orchestrator says a chat used, as the real one does: `X-Conduit-Usage-Tokens`
    /// on JSON, and on a stream (when the gateway asks) the comment line, split over two chunks.
    let usageTokens = Locked<Int?>(nil)
    var received: [Call] { calls.withLock { $0 } }

    func forward(to service: ServiceName, method: String, path: String, body: [UInt8]?,
                 headers: [(name: String, value: String)], timeout: Duration) async throws -> ForwardedResponse {
        calls.withLock { $0.append(Call(service: service, method: method, path: path, body: body,
                                        headers: Dictionary(headers.map { ($0.name.lowercased(), $0.value) }) { $1 })) }
        if service == .retriever { throw URLError(.cannotConnectToHost) }
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let tokens = usageTokens.withLock { $0 }
        if let body, JSONValue.parse(body)?["stream"] == true {
            continuation.yield(Array((#"data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}"# + "\n\n").utf8))
            if let tokens, headers.contains(where: { $0.name == ConduitHeader.reportUsage }) {
                let comment = Array((ConduitHeader.usageComment + String(tokens) + "\n\n").utf8)
                continuation.yield(Array(comment[..<(comment.count - 5)]))
                continuation.yield(Array(comment[(comment.count - 5)...]))
            }
            continuation.yield(Array("data: [DONE]\n\n".utf8))
            continuation.finish()
            return ForwardedResponse(status: 200, headers: [("Content-Type", "text/event-stream"), ("X-Conduit-Deployment", "tiny-local"), ("X-Internal-Secret", "no")], body: stream)
        }
        continuation.yield(Array(#"{"object":"list","#.utf8))
        continuation.yield(Array((path == "/v1/models" ? #""data":[{"id":"m"},{"id":"gpt-4o"},{"id":"auto"}]}"# : #""data":[]}"#).utf8))
        continuation.finish()
        var answer = [("Content-Type", "application/json"), ("X-Conduit-Session-Id", "s1")]
        if let tokens, path == "/v1/chat/completions" { answer.append((ConduitHeader.usageTokens, String(tokens))) }
        return ForwardedResponse(status: 200, headers: answer, body: stream)
    }
}
