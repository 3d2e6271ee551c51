import Foundation
import Providers
import TestSupport

/// Responses shaped like each provider's documented wire format, for one short answer:
/// "Hello there", 12 prompt tokens (4 of them cached), 2 completion tokens.
enum ProviderFixtures {
    static func completion(_ kind: ProviderKind) -> String {
        switch kind {
        case .openAI, .azureOpenAI:
            #"{"id":"chatcmpl-AZ1","object":"chat.completion","created":1730000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"system_fingerprint":"fp_0ba0d124f1"}"#
        case .anthropic:
            #"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"Hello there"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":4,"output_tokens":2}}"#
        case .gemini:
            #"{"candidates":[{"content":{"parts":[{"text":"Hello there"}],"role":"model"},"finishReason":"STOP","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"}]}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"totalTokenCount":14,"cachedContentTokenCount":4},"modelVersion":"gemini-2.0-flash","responseId":"mK9mZ4yJBd"}"#
        }
    }

    /// The stream's SSE frames, each ending in a blank line; `cut` frames stop before the end.
    static func streamFrames(_ kind: ProviderKind) -> [String] {
        switch kind {
        case .openAI, .azureOpenAI:
            let head = #""id":"chatcmpl-AZ2","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1""#
            return [
                #"data: {\#(head),"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"# + "\n\n",
                #"data: {\#(head),"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"# + "\n\n",
                #"data: {\#(head),"choices":[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}],"usage":null}"# + "\n\n",
                #"data: {\#(head),"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"# + "\n\n",
                #"data: {\#(head),"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":0}}}"# + "\n\n",
                "data: [DONE]\n\n",
            ]
        case .anthropic:
            return [
                "event: message_start\n" + #"data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-3-5-haiku-20241022","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":4,"output_tokens":1}}}"# + "\n\n",
                "event: content_block_start\n" + #"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"# + "\n\n",
                "event: ping\n" + #"data: {"type": "ping"}"# + "\n\n",
                "event: content_block_delta\n" + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"# + "\n\n",
                "event: content_block_delta\n" + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"# + "\n\n",
                "event: content_block_stop\n" + #"data: {"type":"content_block_stop","index":0}"# + "\n\n",
                "event: message_delta\n" + #"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"# + "\n\n",
                "event: message_stop\n" + #"data: {"type":"message_stop"}"# + "\n\n",
            ]
        case .gemini:
            return [
                #"data: {"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},"modelVersion":"gemini-2.0-flash","responseId":"x1"}"# + "\r\n\r\n",
                #"data: {"candidates":[{"content":{"parts":[{"text":" there"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"totalTokenCount":14,"cachedContentTokenCount":4},"modelVersion":"gemini-2.0-flash","responseId":"x1"}"# + "\r\n\r\n",
            ]
        }
    }

    static func error(_ kind: ProviderKind, status: Int) -> String {
        switch kind {
        case .openAI, .azureOpenAI:
            status == 429
                ? #"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
                : #"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#
        case .anthropic:
            status == 429
                ? #"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#
                : #"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#
        case .gemini:
            status == 429
                ? #"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#
                : #"{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}"#
        }
    }

    /// Whether a request asked for a stream, in the provider's own way.
    static func isStream(_ request: TestHTTPServer.Request) -> Bool {
        request.path.contains("streamGenerateContent") || String(decoding: request.body, as: UTF8.self).contains(#""stream":true"#)
    }

    /// Timeouts far beyond any answer here: a starved CI machine must not turn a test of something else into a timeout.
    static func deployment(_ kind: ProviderKind, id: String, server: TestHTTPServer, timeouts: Deployment.Timeouts = .init(firstByte: .seconds(30), total: .seconds(60))) -> Deployment {
        let base = kind == .openAI ? server.baseURL + "/v1" : server.baseURL
        return Deployment(id: id, provider: kind, upstreamModel: "upstream-\(kind.rawValue)", baseURL: base,
                          apiKeyVariable: "TEST_KEY_\(kind.rawValue.uppercased())", apiVersion: kind == .azureOpenAI ? "2024-10-21" : nil,
                          prices: .init(input: 1, output: 2), timeouts: timeouts)
    }

    static let keys = APIKeys(environment: Dictionary(uniqueKeysWithValues: ProviderKind.allCases.map { ("TEST_KEY_\($0.rawValue.uppercased())", "sk-test-\($0.rawValue)") }))
}

/// A local server speaking one provider's wire format, answering each request with the next
/// step of a script (the last step repeats), and recording what it was sent.
final class ScriptedProvider: Sendable {
    enum Step: Sendable {
        case ok
        case status(Int, retryAfter: String? = nil)
        /// Holds the request without answering.
        case stall(seconds: Double)
        /// A stream that sends its first frames, then drops the connection.
        case cut
    }

    let kind: ProviderKind
    let server: TestHTTPServer
    private let state: Locked<(steps: [Step], requests: [TestHTTPServer.Request])>

    init(_ kind: ProviderKind, _ steps: [Step]) throws {
        self.kind = kind
        let state = Locked((steps: steps, requests: [TestHTTPServer.Request]()))
        self.state = state
        server = try TestHTTPServer { request, connection in
            let step = state.withLock { state -> Step in
                state.requests.append(request)
                return state.steps.count > 1 ? state.steps.removeFirst() : state.steps[0]
            }
            ScriptedProvider.answer(kind, step, request, connection)
        }
    }

    var requests: [TestHTTPServer.Request] { state.withLock { $0.requests } }

    static func answer(_ kind: ProviderKind, _ step: Step, _ request: TestHTTPServer.Request, _ connection: TestHTTPServer.Connection) {
        switch step {
        case .ok:
            if ProviderFixtures.isStream(request) {
                connection.startChunked(contentType: "text/event-stream")
                for frame in ProviderFixtures.streamFrames(kind) { connection.writeChunk(frame) }
                connection.endChunks()
            } else {
                connection.respond(headers: ["Content-Type": "application/json"], body: Array(ProviderFixtures.completion(kind).utf8))
            }
        case .status(let status, let retryAfter):
            var headers = ["Content-Type": "application/json"]
            if let retryAfter { headers["Retry-After"] = retryAfter }
            connection.respond(status: status, headers: headers, body: Array(ProviderFixtures.error(kind, status: status).utf8))
        case .stall(let seconds):
            _ = connection.waitForPeerClose(seconds: seconds)
            connection.close()
        case .cut:
            connection.startChunked(contentType: "text/event-stream")
            let frames = ProviderFixtures.streamFrames(kind)
            for frame in frames.prefix(max(1, frames.count / 2)) { connection.writeChunk(frame) }
            Thread.sleep(forTimeInterval: 0.05)
            connection.close()
        }
    }
}
