import ConduitProtocol
import Providers
import Tracing

/// The span of one model call, child of the request's span, with OpenTelemetry's GenAI semantic
/// conventions: the operation, the model asked for and the one that answered, the provider, the
/// tokens and the finish reason. Prompt and completion text only when `content` is on
/// (`CONDUIT_TRACE_CONTENT`). A stream's span ends with its last chunk. Only a request that is
/// traced (its server span is the current context) gets one; otherwise every call is a no-op.
struct ModelCallSpan: Sendable {
    let span: (any Span)?
    let content: Bool

    static func start(_ request: ChatCompletionRequest, content: Bool) -> ModelCallSpan {
        guard let parent = ServiceContext.current else { return ModelCallSpan(span: nil, content: content) }
        let span = InstrumentationSystem.tracer.startAnySpan("chat \(request.model)", context: parent, ofKind: .client)
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["gen_ai.operation.name"] = "chat"
                attributes["gen_ai.request.model"] = request.model
                attributes["gen_ai.request.max_tokens"] = request.completionTokenLimit
                attributes["gen_ai.request.temperature"] = request.temperature
                attributes["gen_ai.request.top_p"] = request.topP
                attributes["gen_ai.request.streaming"] = request.stream == true
                if content {
                    attributes["gen_ai.prompt"] = request.messages.compactMap { $0.content?.plainText }.joined(separator: "\n")
                }
            }
        }
        return ModelCallSpan(span: span, content: content)
    }

    /// The call answered (a stream: it ended): what served it and what it cost in tokens.
    func finish(served: ProviderRouter.Served, usage: ProviderUsage, responseID: String?, finishReason: String?, completion: String?) {
        guard let span else { return }
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["gen_ai.provider.name"] = served.deployment.provider.rawValue
                attributes["gen_ai.system"] = served.deployment.provider.rawValue
                attributes["gen_ai.response.model"] = served.model
                attributes["gen_ai.response.id"] = responseID
                attributes["gen_ai.response.finish_reasons"] = finishReason.map { [$0] }
                attributes["gen_ai.usage.input_tokens"] = usage.promptTokens
                attributes["gen_ai.usage.output_tokens"] = usage.completionTokens
                attributes["conduit.deployment"] = served.deployment.id
                attributes["conduit.attempts"] = served.attempts
                if content, let completion { attributes["gen_ai.completion"] = completion }
            }
        }
        span.end()
    }

    func fail(_ error: any Error, type: String) {
        guard let span else { return }
        span.attributes["error.type"] = type
        span.setStatus(SpanStatus(code: .error))
        span.end()
    }
}
