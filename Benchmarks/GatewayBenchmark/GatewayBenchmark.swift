import Foundation
import Hummingbird
import Logging
import NIOCore

/// The instant upstream of `make bench-gateway`: an OpenAI-compatible chat endpoint that answers
/// every request at once with a fixed completion, or a fixed stream of five content chunks, so
/// the benchmark measures what the proxies in front of it add; or after `delay_ms`, for a model
/// that takes its time.
///
///     bench-gateway-upstream [port] [delay_ms]
@main
struct GatewayBenchmarkUpstream {
    static let completion = ByteBuffer(string: #"{"id":"chatcmpl-bench","object":"chat.completion","created":1730000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#)

    static let stream: ByteBuffer = {
        let head = #""id":"chatcmpl-bench","object":"chat.completion.chunk","created":1730000000,"model":"bench""#
        var text = #"data: {\#(head),"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"# + "\n\n"
        for word in ["Hello!", " How", " can", " I", " help?"] {
            text += #"data: {\#(head),"choices":[{"index":0,"delta":{"content":"\#(word)"},"finish_reason":null}]}"# + "\n\n"
        }
        text += #"data: {\#(head),"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"# + "\n\n"
        text += #"data: {\#(head),"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"# + "\n\n"
        text += "data: [DONE]\n\n"
        return ByteBuffer(string: text)
    }()

    static func main() async throws {
        let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 18990 : 18990
        let delay = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 0 : 0
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
            let streaming = String(buffer: body).contains(#""stream":true"#)
            return Response(
                status: .ok,
                headers: [.contentType: streaming ? "text/event-stream" : "application/json"],
                body: .init(byteBuffer: streaming ? stream : completion))
        }
        var logger = Logger(label: "bench-upstream")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        try await app.runService()
    }
}
