import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Logging
@testable import Orchestrator
import Testing
import TestSupport

/// The stages of the chat path, each on its own and in the pipeline, over in-process fakes.
@Suite(.timeLimit(.minutes(1)))
struct ChatStageTests {
    typealias Harness = ChatAPITests.Harness

    /// A stage that writes down what it was asked to do, and can answer or refuse.
    struct Probe: ChatStage {
        let name: String
        let log: Locked<[String]>
        var answers = false
        var refuses = false

        func check(_ turn: ChatTurn) throws {
            log.withLock { $0.append("\(name).check") }
            if refuses { throw APIError.invalidRequest("\(name) refuses.", param: name) }
        }

        func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
            log.withLock { $0.append("\(name).prepare") }
            turn.body.messages.insert(.system("from \(name)"), at: 0)
            guard answers else { return nil }
            let completion = ChatCompletion(id: "stage", created: 1, model: turn.request.model,
                                            choices: [.init(index: 0, message: .assistant("answered by \(name)"), finishReason: "stop")], usage: nil)
            return StageAnswer(completion: completion, usage: turn.billing)
        }

        func finish(_ turn: ChatTurn, answer: ChatAnswer) async {
            log.withLock { $0.append("\(name).finish(\(answer.servedModel ?? "stage"))") }
        }
    }

    /// A router whose chat route runs `stages` in a pipeline over the fake models.
    static func app(_ stages: [any ChatStage], models: FakeModels, usage: RecordedUsage, metrics: StageMetrics? = nil) -> some ApplicationProtocol {
        let router = Router(context: ConduitRequestContext.self)
        router.add(middleware: RequestContextMiddleware())
        router.add(middleware: ErrorEnvelopeMiddleware())
        let pipeline = ChatPipeline(stages: stages, models: models, usage: usage, metrics: metrics)
        router.post("/v1/chat/completions") { request, context in
            let body = try await request.decodeJSON(ChatCompletionRequest.self, context: context)
            let billing = UsageEvent(requestID: context.requestID, tenant: "acme", kind: "chat", model: body.model,
                                     promptTokens: 0, completionTokens: 0, status: "ok", timestamp: Date())
            let turn = ChatTurn(request: body, tenant: "acme", requestHeaders: request.headers, primary: models.primaryDeployment(for: body.model),
                                counter: TokenCounter(), billing: billing)
            return try await pipeline.run(turn, context: context)
        }
        return Application(router: router)
    }

    static let hello = #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#

    @Test func stagesPrepareInOrderThenTheModelAnswersThenTheyFinishInOrder() async throws {
        let log = Locked<[String]>([])
        let models = FakeModels()
        try await Self.app([Probe(name: "a", log: log), Probe(name: "b", log: log)], models: models, usage: RecordedUsage()).test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.hello)
            #expect(response.status == .ok)
        }
        #expect(log.withLock { $0 } == ["a.check", "b.check", "a.prepare", "b.prepare", "a.finish(tiny)", "b.finish(tiny)"])
        // Each stage's change reached the model, the later one's outermost.
        #expect(models.requests.first?.messages.prefix(2).map { $0.content?.plainText } == ["from b", "from a"])
    }

    @Test func eachStagesPrepareAndFinishAreTimed() async throws {
        let log = Locked<[String]>([])
        let registry = PrometheusCollectorRegistry()
        let app = Self.app([Probe(name: "a", log: log)], models: FakeModels(), usage: RecordedUsage(), metrics: StageMetrics(registry: registry))
        try await app.test(.router) { client in
            let answered = try await ChatAPITests.chat(client, Self.hello)
            #expect(answered.status == .ok)
            let failed = try await ChatAPITests.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"fail"}]}"#)
            #expect(failed.status == .badGateway)
        }
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        for series in [#"stage="a",phase="prepare"} 2"#, #"stage="a",phase="finish"} 1"#, #"stage="a",phase="abandon"} 1"#] {
            #expect(text.contains("conduit_chat_stage_duration_seconds_count{" + series), "\(series): \(text)")
        }
        // A stage is named after its type.
        #expect(BudgetStage(directory: FakeBudgets(), counters: MemorySpend(), backlog: SettleBacklog(limit: 1, registry: PrometheusCollectorRegistry()), logger: Logger(label: "t")).name == "budget")
        #expect(CacheStage.self != RetrievalStage.self && "\(SessionStage.self)".hasSuffix("Stage"))
    }

    @Test func aStageThatAnswersEndsThePreparingAndTheModelIsNotCalled() async throws {
        let log = Locked<[String]>([])
        let models = FakeModels()
        let usage = RecordedUsage()
        let stages: [any ChatStage] = [Probe(name: "a", log: log), Probe(name: "b", log: log, answers: true), Probe(name: "c", log: log)]
        try await Self.app(stages, models: models, usage: usage).test(.router) { client in
            let json = try await ChatAPITests.chat(client, Self.hello)
            #expect(ChatAPITests.json(json)?["choices"]?[0]?["message"]?["content"] == "answered by b")
            // Asked for a stream, the same answer comes as one.
            let stream = try await ChatAPITests.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            let lines = ChatAPITests.dataLines(stream)
            #expect(lines.last == "[DONE]")
            #expect(lines.dropLast().compactMap { JSONValue.parse(Array($0.utf8))?["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "answered by b")
        }
        #expect(models.requests.isEmpty)
        #expect(log.withLock { $0 }.filter { $0.hasPrefix("c.") && $0 != "c.check" }.isEmpty)
        #expect(log.withLock { $0 }.contains("b.finish(stage)"))
        #expect(usage.recorded.count == 2)
    }

    @Test func aStageThatRefusesStopsEverythingAndTheFailureIsBilled() async throws {
        let log = Locked<[String]>([])
        let models = FakeModels()
        let usage = RecordedUsage()
        try await Self.app([Probe(name: "a", log: log), Probe(name: "b", log: log, refuses: true)], models: models, usage: usage).test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.hello)
            #expect(response.status == .badRequest)
            #expect(ChatAPITests.json(response)?["error"]?["param"] == "b")
        }
        #expect(log.withLock { $0 } == ["a.check", "b.check"])
        #expect(models.requests.isEmpty)
        #expect(usage.recorded.map(\.status) == ["invalid_request_error"])
    }
}

/// The stages the orchestrator runs, through its routes.
extension ChatStageTests {
    @Test func aSessionPutsItsHistoryInFrontAndStoresTheTurn() async throws {
        let harness = Harness()
        let session = "s-\(UUID().uuidString.prefix(8))"
        try await harness.app().test(.router) { client in
            let first = try await ChatAPITests.chat(client, #"{"model":"tiny","conduit":{"session_id":"\#(session)"},"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"my name is Ada"}]}"#)
            #expect(first.headers[HTTPField.Name("X-Conduit-Session-Id")!] == session)
            #expect(ChatAPITests.json(first)?["conduit"]?["session_id"]?.stringValue == session)
            // The same session by header: the history goes between the system prompt and the new message.
            _ = try await ChatAPITests.chat(client, #"{"model":"tiny","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"who am I?"}]}"#,
                                            headers: [HTTPField.Name("X-Conduit-Session-Id")!: session])
            // And by the `user` field.
            _ = try await ChatAPITests.chat(client, #"{"model":"tiny","user":"\#(session)","messages":[{"role":"user","content":"and now?"}]}"#,
                                            headers: [HTTPField.Name("X-Conduit-Session")!: "user"])
            let invalid = try await ChatAPITests.chat(client, #"{"model":"tiny","conduit":{"session_id":"has space"},"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(invalid.status == .badRequest)
            #expect(ChatAPITests.json(invalid)?["error"]?["param"] == "conduit.session_id")
        }
        let second = try #require(harness.models.requests.dropFirst().first)
        #expect(second.messages.map { $0.content?.plainText ?? "" } == ["be brief", "my name is Ada", "Hello there", "who am I?"])
        #expect(harness.models.requests.last?.messages.count == 5)
        // System messages are the request's, not the session's.
        #expect(harness.sessions.messages(tenant: "acme", id: session).map(\.role) == ["user", "assistant", "user", "assistant", "user", "assistant"])
        #expect(harness.sessions.messages(tenant: "other", id: session).isEmpty)
        #expect(harness.models.requests.count == 3)
    }

    @Test func theCacheAnswersTheSameQuestionInTheSameContextAndTenantOnly() async throws {
        var harness = Harness()
        harness.environment = ["CONDUIT_CACHE_ENABLED": "true"]
        let question = #"{"model":"tiny","temperature":0,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#
        try await harness.app().test(.router) { client in
            let miss = try await ChatAPITests.chat(client, question)
            #expect(miss.headers[HTTPField.Name("X-Conduit-Cache")!] == "miss")
            let hit = try await ChatAPITests.chat(client, question, requestID: "req-hit")
            #expect(hit.headers[HTTPField.Name("X-Conduit-Cache")!] == "hit")
            #expect(hit.headers[HTTPField.Name("X-Conduit-Cache-Similarity")!] == "1.0000")
            let body = try #require(ChatAPITests.json(hit))
            #expect(body["id"] == "chatcmpl-req-hit")
            #expect(body["conduit"]?["cache"]?["hit"] == true)
            #expect(body["choices"]?[0]?["message"]?["content"] == "Hello there")
            // Another tenant, another context (an earlier message), a hot sampling: the model answers.
            #expect(try await ChatAPITests.chat(client, question, tenant: "other").headers[HTTPField.Name("X-Conduit-Cache")!] == "miss")
            let longer = #"{"model":"tiny","temperature":0,"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"},{"role":"user","content":"What is the capital of France?"}]}"#
            #expect(try await ChatAPITests.chat(client, longer).headers[HTTPField.Name("X-Conduit-Cache")!] == "miss")
            let hot = #"{"model":"tiny","temperature":1.5,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#
            #expect(try await ChatAPITests.chat(client, hot).headers[HTTPField.Name("X-Conduit-Cache")!] == nil)
            // A stream is served from the cache too.
            let streamed = try await ChatAPITests.chat(client, #"{"model":"tiny","stream":true,"temperature":0,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#)
            #expect(streamed.headers[HTTPField.Name("X-Conduit-Cache")!] == "hit")
            #expect(ChatAPITests.dataLines(streamed).last == "[DONE]")
        }
        #expect(harness.models.requests.count == 4)
        let hits = harness.usage.recorded.filter { $0.cacheHit == true }
        #expect(hits.count == 2)
        #expect(hits.allSatisfy { $0.costUSD == 0 && $0.completionTokens == 2 })
        // A hit records what it saved: the answer's cost when the model gave it.
        let paid = try #require(harness.usage.recorded.first { $0.cacheHit == false }?.costUSD)
        #expect(hits.allSatisfy { abs(($0.savedUSD ?? 0) - paid) < 1e-12 } && paid > 0)
    }

    @Test func retrievalPacksSourcesIntoThePromptAndTheAnswerCarriesThem() async throws {
        var harness = Harness()
        harness.services = FakeServices(chunks: ["handbook": [
            SearchHit(chunkID: "c1", docID: "leave", text: "Employees get 25 days of paid leave a year.", start: 0, end: 43, metadata: [:], score: 0.9, scores: ["vector": 0.9]),
        ]])
        try await harness.app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, #"{"model":"tiny","conduit":{"rag":{"collection":"handbook"}},"messages":[{"role":"user","content":"How many days of leave do I get?"}]}"#)
            #expect(response.status == .ok)
            let conduit = try #require(ChatAPITests.json(response)?["conduit"])
            #expect(conduit["retrieval"]?["used"] == 1)
            #expect(conduit["citations"]?[0]?["document_id"] == "leave")
            // A collection the retriever does not know: its 404, under `conduit.rag`.
            let missing = try await ChatAPITests.chat(client, #"{"model":"tiny","conduit":{"rag":{"collection":"nope"}},"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(missing.status == .notFound)
            #expect(ChatAPITests.json(missing)?["error"]?["param"] == "conduit.rag.collection")
            // Options refused before anything is asked.
            let bad = try await ChatAPITests.chat(client, #"{"model":"tiny","conduit":{"rag":{"collection":"handbook","top_k":99}},"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(ChatAPITests.json(bad)?["error"]?["param"] == "conduit.rag.top_k")
        }
        let prompt = try #require(harness.models.requests.first?.messages.first)
        #expect(prompt.role == "system" && prompt.content?.plainText.contains("25 days of paid leave") == true)
        #expect(harness.services.searched.map(\.collection) == ["handbook", "nope"])
        #expect(harness.services.searched.allSatisfy { $0.tenant == "acme" })
        #expect(harness.models.requests.count == 1)
    }

    @Test func sessionsAndTheCacheAreTheTenantsResources() async throws {
        var harness = Harness()
        harness.environment = ["CONDUIT_CACHE_ENABLED": "true"]
        try await harness.app().test(.router) { client in
            _ = try await ChatAPITests.chat(client, #"{"model":"tiny","temperature":0,"conduit":{"session_id":"mine"},"messages":[{"role":"user","content":"remember me"}]}"#)
            let signed = TestIdentity.fields(tenant: "acme")
            let session = ChatAPITests.json(try await client.execute(uri: "/v1/sessions/mine", method: .get, headers: signed))
            #expect(session?["object"] == "session")
            #expect(session?["messages"]?.arrayValue?.count == 2)
            #expect(try await client.execute(uri: "/v1/sessions/mine", method: .get, headers: TestIdentity.fields(tenant: "other")).status == .notFound)
            #expect(try await client.execute(uri: "/v1/sessions/bad%20id", method: .get, headers: signed).status == .badRequest)
            #expect(try await client.execute(uri: "/v1/sessions/mine", method: .delete, headers: signed).status == .ok)
            #expect(try await client.execute(uri: "/v1/sessions/mine", method: .delete, headers: signed).status == .notFound)
            let purged = ChatAPITests.json(try await client.execute(uri: "/v1/cache", method: .delete, headers: signed))
            #expect(purged?["deleted"] == 1)
        }
        #expect(harness.answers.count == 0)
    }
}
