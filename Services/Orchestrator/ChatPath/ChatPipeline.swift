import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Providers

/// The chat path: the stages in order around one model call, streaming or not. Until the first
/// byte of the response every failure is an HTTP error with the envelope (the model router
/// retries and falls back meanwhile); after it, a failure ends the stream with an error event.
/// Every request leaves one usage event, whatever happened to it.
struct ChatPipeline: Sendable {
    let stages: [any ChatStage]
    let models: any ChatModels
    let usage: any UsageRecorder
    var metrics: StageMetrics?
    /// Prompt and completion text on model-call spans (`CONDUIT_TRACE_CONTENT`).
    var traceContent = false

    func run(_ turn: ChatTurn, context: ConduitRequestContext) async throws -> Response {
        var turn = turn
        var prepared = 0
        do {
            for stage in stages { try stage.check(turn) }
            for (index, stage) in stages.enumerated() {
                let started = ContinuousClock.now
                let answer = try await stage.prepare(&turn, context: context)
                metrics?.record(stage, phase: "prepare", since: started)
                prepared = index + 1
                if let answer {
                    return try await respond(with: answer, turn: turn, finishing: Array(stages[...index]))
                }
            }
        } catch {
            usage.record(turn.billing.failed(error, started: turn.started))
            await abandon(turn, costUSD: 0, stages: Array(stages.prefix(prepared)))
            throw ChatErrors.apiError(for: error)
        }
        if turn.body.stream == true {
            let opened: (ProviderStream, ProviderRouter.Served)
            let call = ModelCallSpan.start(turn.body, content: traceContent)
            do {
                opened = try await models.stream(turn.body)
            } catch {
                usage.record(turn.billing.failed(error, started: turn.started))
                await abandon(turn, costUSD: 0)
                let apiError = ChatErrors.apiError(for: error)
                call.fail(error, type: apiError.envelope.error.type)
                throw apiError
            }
            return StreamRelay(turn: turn, stream: opened.0, served: opened.1, pipeline: self, call: call, logger: context.logger).response()
        }
        let call = ModelCallSpan.start(turn.body, content: traceContent)
        do {
            var (completion, served) = try await models.complete(turn.body)
            let text = completion.choices.first?.message.content?.plainText ?? ""
            let tokens = completion.usage.map { ProviderUsage($0) } ?? TokenEstimate.usage(request: turn.body, completionText: text)
            completion.conduit = turn.info(answer: text)
            var event = turn.billing.finished(served: served, usage: tokens, started: turn.started, firstToken: nil, status: "ok")
            event.citations = completion.conduit?.retrieval == nil ? nil : completion.conduit?.citations?.count ?? 0
            usage.record(event)
            call.finish(served: served, usage: tokens, responseID: completion.id, finishReason: completion.choices.first?.finishReason, completion: text)
            await finish(turn, answer: ChatAnswer(completion: completion, servedModel: served.model, costUSD: event.costUSD ?? 0))
            var response = try jsonResponse(completion)
            response.headers[HTTPField.Name("X-Conduit-Deployment")!] = served.deployment.id
            response.headers[HTTPField.Name(ConduitHeader.usageTokens)!] = String(tokens.promptTokens + tokens.completionTokens)
            for field in turn.responseHeaders { response.headers.append(field) }
            return response
        } catch {
            usage.record(turn.billing.failed(error, started: turn.started))
            await abandon(turn, costUSD: 0)
            let apiError = ChatErrors.apiError(for: error)
            call.fail(error, type: apiError.envelope.error.type)
            throw apiError
        }
    }

    /// Every stage's `finish`, in order.
    func finish(_ turn: ChatTurn, answer: ChatAnswer, stages: [any ChatStage]? = nil) async {
        for stage in stages ?? self.stages {
            let started = ContinuousClock.now
            await stage.finish(turn, answer: answer)
            metrics?.record(stage, phase: "finish", since: started)
        }
    }

    /// Every stage's `abandon`, in order.
    func abandon(_ turn: ChatTurn, costUSD: Double, stages: [any ChatStage]? = nil) async {
        for stage in stages ?? self.stages {
            let started = ContinuousClock.now
            await stage.abandon(turn, costUSD: costUSD)
            metrics?.record(stage, phase: "abandon", since: started)
        }
    }

    /// A stage's answer: as JSON, or told again as the stream a model would have sent.
    private func respond(with answer: StageAnswer, turn: ChatTurn, finishing stages: [any ChatStage]) async throws -> Response {
        usage.record(answer.usage)
        await finish(turn, answer: ChatAnswer(completion: answer.completion, servedModel: nil), stages: stages)
        // No model answered: nothing counts against the caller's tokens per minute.
        guard turn.body.stream == true else {
            var response = try jsonResponse(answer.completion)
            response.headers[HTTPField.Name(ConduitHeader.usageTokens)!] = "0"
            for field in turn.responseHeaders { response.headers.append(field) }
            return response
        }
        var headers = turn.responseHeaders
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let replay = CacheReplay.chunks(of: answer.completion, includeUsage: turn.body.streamOptions?.includeUsage == true)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var output = SSEOutput(writer: writer)
            for chunk in replay { try await output.send(chunk) }
            if turn.reportsUsage { try await output.comment(tokens: 0) }
            try await output.done()
        })
    }
}
