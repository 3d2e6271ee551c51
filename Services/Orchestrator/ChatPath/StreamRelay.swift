import ConduitKit
import ConduitProtocol
import HTTPTypes
import Hummingbird
import Logging
import Providers

/// Relays a model's stream to the client as OpenAI's `chat.completion.chunk`s: the chunk with
/// the finish reason is held back until the stream ends so that the `conduit` object rides on
/// it, usage comes last when asked for (an estimate when the model sent none), then
/// `data: [DONE]`. A client that hangs up cancels the model call; a model that fails mid-stream
/// ends it with an error event. The stages finish on a whole answer without tool calls.
struct StreamRelay: Sendable {
    let turn: ChatTurn
    let stream: ProviderStream
    let served: ProviderRouter.Served
    let pipeline: ChatPipeline
    /// Ends with the stream.
    let call: ModelCallSpan
    let logger: Logger

    func response() -> Response {
        var headers = turn.responseHeaders
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Conduit-Deployment")!] = served.deployment.id
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var output = SSEOutput(writer: writer)
            try await relay(to: &output)
        })
    }

    /// What the relay has seen so far.
    private struct Progress {
        var firstToken: ContinuousClock.Instant?
        var answer = ""
        /// Characters generated, tool-call arguments included (for an estimate).
        var generated = 0
        var calledTools = false
        var finishReason: String?
        var reported: ProviderUsage?
        /// The first chunk: its id, time and model stamp the chunks the relay makes.
        var stamp: ChatCompletionChunk?
        var finishing: ChatCompletionChunk?

        mutating func read(_ chunk: ChatCompletionChunk) {
            stamp = stamp ?? chunk
            for choice in chunk.choices {
                answer += choice.delta.content ?? ""
                generated += choice.delta.content?.count ?? 0
                generated += choice.delta.toolCalls?.reduce(0) { $0 + ($1.function?.arguments?.count ?? 0) } ?? 0
                calledTools = calledTools || choice.delta.toolCalls != nil
                finishReason = choice.finishReason ?? finishReason
            }
            if firstToken == nil, chunk.choices.contains(where: { !($0.delta.content ?? "").isEmpty || $0.delta.toolCalls != nil }) {
                firstToken = .now
            }
        }
    }

    private func relay(to output: inout SSEOutput) async throws {
        let body = turn.body
        let usage = pipeline.usage
        var progress = Progress()
        do {
            for try await item in stream {
                switch item {
                case .chunk(let chunk):
                    if let held = progress.finishing {
                        try await output.send(held)
                        progress.finishing = nil
                    }
                    progress.read(chunk)
                    if chunk.choices.contains(where: { $0.finishReason != nil }) {
                        progress.finishing = chunk
                    } else {
                        try await output.send(chunk)
                    }
                case .finished(let tokens):
                    progress.reported = tokens
                }
            }
            let tokens = progress.reported ?? TokenEstimate.usage(request: body, characters: progress.generated)
            let info = turn.info(answer: progress.answer)
            if var held = progress.finishing {
                held.conduit = info
                try await output.send(held)
            }
            if let stamp = progress.stamp, body.streamOptions?.includeUsage == true {
                var last = ChatCompletionChunk(id: stamp.id, created: stamp.created, model: stamp.model, choices: [], usage: Usage(tokens))
                // A stream without a finish reason still reports what it retrieved.
                if progress.finishing == nil { last.conduit = info }
                try await output.send(last)
            }
            if turn.reportsUsage { try await output.comment(tokens: tokens.promptTokens + tokens.completionTokens) }
            try await output.done()
            var event = turn.billing.finished(served: served, usage: tokens, started: turn.started, firstToken: progress.firstToken, status: "ok")
            event.citations = info?.retrieval == nil ? nil : info?.citations?.count ?? 0
            usage.record(event)
            call.finish(served: served, usage: tokens, responseID: progress.stamp?.id, finishReason: progress.finishReason, completion: progress.answer)
            if let stamp = progress.stamp, !progress.calledTools {
                var completion = ChatCompletion(
                    id: stamp.id, created: stamp.created, model: stamp.model,
                    choices: [.init(index: 0, message: .assistant(progress.answer), finishReason: progress.finishReason ?? "stop")], usage: Usage(tokens))
                completion.conduit = info
                await pipeline.finish(turn, answer: ChatAnswer(completion: completion, servedModel: served.model, costUSD: event.costUSD ?? 0))
            } else {
                await pipeline.abandon(turn, costUSD: event.costUSD ?? 0)
            }
        } catch let error as SSEOutput.ClientGone {
            stream.cancel()
            let event = turn.billing.finished(
                served: served, usage: progress.reported ?? TokenEstimate.usage(request: body, characters: progress.generated), started: turn.started,
                firstToken: progress.firstToken, status: "client_closed")
            usage.record(event)
            call.fail(error, type: "client_closed")
            await pipeline.abandon(turn, costUSD: event.costUSD ?? 0)
            logger.info("client closed the stream; upstream cancelled")
            throw error
        } catch {
            // Bytes have reached the client: the status is sent, so the failure travels as an event.
            let apiError = ChatErrors.apiError(for: error)
            logger.warning("stream failed after its first chunk", metadata: [LogKey.error: "\(error)", "deployment": "\(served.deployment.id)"])
            let event = turn.billing.finished(
                served: served, usage: TokenEstimate.usage(request: body, characters: progress.generated), started: turn.started,
                firstToken: progress.firstToken, status: apiError.envelope.error.type)
            usage.record(event)
            call.fail(error, type: apiError.envelope.error.type)
            await pipeline.abandon(turn, costUSD: event.costUSD ?? 0)
            try? await output.fail(apiError.envelope)
        }
    }
}
