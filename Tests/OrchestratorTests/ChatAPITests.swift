import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import Orchestrator
import Testing
import TestSupport

/// The orchestrator's chat API through its router, over in-process fakes of the models, usage,
/// sessions, the cache and the embedder and retriever: routing, validation, error mapping and
/// the stages, with no server started. (The same routes over the real provider path and Kafka:
/// OrchestratorStoreTests.ChatUpstreamTests.)
@Suite(.timeLimit(.minutes(1)))
struct ChatAPITests {
    struct Harness {
        var models = FakeModels()
        var usage = RecordedUsage()
        var sessions = InMemorySessionStore()
        var answers = InMemoryAnswerIndex()
        var services = FakeServices()
        var budgets = FakeBudgets()
        var spend = MemorySpend()
        var environment: [String: String] = [:]

        func app() throws -> some ApplicationProtocol {
            Application(router: try Fakes.router(
                .fakes(models: models, usage: usage, sessions: sessions, answers: answers, services: services, budgets: budgets, spend: spend),
                environment: environment))
        }
    }

    static func chat(_ client: some TestClientProtocol, _ body: String, tenant: String = "acme", requestID: String = UUID().uuidString,
                     headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers = TestIdentity.fields(tenant: tenant, keyID: "key-1", requestID: requestID)
        headers[.contentType] = "application/json"
        for field in extra { headers.append(field) }
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    static func json(_ response: TestResponse) -> JSONValue? { JSONValue.parse(Array(response.body.readableBytesView)) }

    static func dataLines(_ response: TestResponse) -> [String] {
        String(buffer: response.body).components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    @Test func aCompletionLeavesOneUsageEventPricedByTheServingDeployment() async throws {
        let harness = Harness()
        let requestID = UUID().uuidString
        try await harness.app().test(.router) { client in
            let response = try await Self.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#, requestID: requestID)
            #expect(response.status == .ok)
            #expect(Self.json(response)?["choices"]?[0]?["message"]?["content"] == "Hello there")
            #expect(response.headers[HTTPField.Name("X-Conduit-Deployment")!] == "tiny-local")
            // No session and no retrieval: no `conduit` object.
            #expect(Self.json(response)?["conduit"] == nil)
        }
        let events = harness.usage.recorded
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.requestID == requestID && event.tenant == "acme" && event.keyID == "key-1")
        #expect(event.kind == "chat" && event.model == "tiny" && event.servedModel == "tiny" && event.deployment == "tiny-local")
        #expect(event.promptTokens == 9 && event.completionTokens == 2)
        #expect(abs((event.costUSD ?? 0) - (9 * 1000 + 2 * 2000) / 1e6) < 1e-9)
        #expect(event.status == "ok" && event.cacheHit == false)
        // What went to the model carries no `conduit` options.
        #expect(harness.models.requests.first?.conduit == nil)
    }

    /// Every failure is billed with its error type; one that happens mid-stream is billed for
    /// what was generated, at the deployment that served it.
    @Test func failuresAreBilledWithTheirErrorTypeWhenEverTheyHappen() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            for (body, status) in [(#"{"model":"tiny","messages":[{"role":"user","content":"fail"}]}"#, HTTPResponse.Status.badGateway),
                                   (#"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"fail"}]}"#, .badGateway),
                                   (#"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"cut"}]}"#, .ok)] {
                let response = try await Self.chat(client, body)
                #expect(response.status == status, "\(body)")
                let error = status == .ok ? Self.dataLines(response).last.flatMap { JSONValue.parse(Array($0.utf8)) }?["error"] : Self.json(response)?["error"]
                #expect(error?["type"] == "upstream_error", "\(body)")
            }
        }
        let events = harness.usage.recorded
        #expect(events.map(\.status) == ["upstream_error", "upstream_error", "upstream_error"])
        #expect(events.map(\.deployment) == ["tiny-local", "tiny-local", "tiny-local"])
        #expect(events[2].completionTokens == 1 && events[2].servedModel == "tiny")
        #expect(events[0].servedModel == nil)
    }

    /// Cost is computed in one place, from the usage: a streamed answer costs exactly what the
    /// same answer costs unstreamed, and usage the model did not report is marked as estimated.
    @Test func aStreamedAnswerCostsWhatTheSameAnswerCostsUnstreamed() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            _ = try await Self.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#)
            _ = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            _ = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"quiet"}]}"#)
        }
        let events = harness.usage.recorded
        #expect(events.count == 3)
        #expect(events[0].costUSD == events[1].costUSD)
        #expect(abs((events[0].costUSD ?? 0) - (9 * 1000 + 2 * 2000) / 1e6) < 1e-12)
        #expect(events[0].usageEstimated == nil && events[1].usageEstimated == nil)
        #expect(events[2].usageEstimated == true)
        #expect((events[2].costUSD ?? 0) > 0)
    }

    /// The gateway settles its tokens-per-minute reservations with the count the orchestrator
    /// gives: a header on JSON, and on a stream (only when the gateway asks) a comment line that
    /// SSE clients skip, before `[DONE]`.
    @Test func theTokenCountRidesOnAHeaderOrAStreamCommentForTheGateway() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let json = try await Self.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(json.headers[HTTPField.Name(ConduitHeader.usageTokens)!] == "11")
            let plain = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(!String(buffer: plain.body).contains(ConduitHeader.usageComment))
            let asked = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
                                            headers: [HTTPField.Name(ConduitHeader.reportUsage)!: "1"])
            #expect(String(buffer: asked.body).hasSuffix(ConduitHeader.usageComment + "11\n\ndata: [DONE]\n\n"))
        }
    }

    @Test func aStreamWithoutModelUsageGetsAnEstimateNotZero() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let response = try await Self.chat(client, #"{"model":"tiny","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"quiet"}]}"#)
            let chunks = Self.dataLines(response).dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
            // "Twelve chars" is 12 characters: about 3 tokens at four characters a token.
            #expect(chunks.last?["usage"]?["completion_tokens"] == 3)
        }
        #expect(harness.usage.recorded.first?.completionTokens == 3)
    }

    @Test func streamsChunksThenUsageOnlyWhenAskedThenDone() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let withUsage = try await Self.chat(client, #"{"model":"tiny","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(withUsage.status == .ok)
            #expect(withUsage.headers[.contentType] == "text/event-stream")
            let lines = Self.dataLines(withUsage)
            #expect(lines.last == "[DONE]")
            let chunks = lines.dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
            #expect(chunks.allSatisfy { $0["object"] == "chat.completion.chunk" && $0["model"] == "tiny" })
            #expect(chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "Hello there")
            let usageChunk = try #require(chunks.last)
            #expect(usageChunk["choices"] == [])
            #expect(usageChunk["usage"]?["completion_tokens"] == 2)

            let without = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            let plain = Self.dataLines(without).dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
            #expect(plain.allSatisfy { $0["choices"]?.arrayValue?.isEmpty == false })
            #expect(Self.dataLines(without).last == "[DONE]")

            // With a session the `conduit` object rides on the finish chunk, not on an extra
            // chunk with empty choices that `chunk.choices[0]` would trip over.
            let session = "stream-\(UUID().uuidString.prefix(8))"
            let withSession = try await Self.chat(client, #"{"model":"tiny","stream":true,"conduit":{"session_id":"\#(session)"},"messages":[{"role":"user","content":"hi"}]}"#)
            let extended = Self.dataLines(withSession).dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
            #expect(extended.allSatisfy { $0["choices"]?.arrayValue?.isEmpty == false })
            let finish = try #require(extended.last)
            #expect(finish["choices"]?[0]?["finish_reason"] == "stop")
            #expect(finish["conduit"]?["session_id"]?.stringValue == session)
        }
    }

    @Test func badInputGetsTheEnvelopeNeverACrash() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let cases: [(String, HTTPResponse.Status, String?)] = [
                (#"{"model":"tiny","messages":[{"role":"user","content":"hi"}"#, .badRequest, nil),
                (#"{"model":"tiny","messages":"hi"}"#, .badRequest, "messages"),
                (#"{"model":"tiny","messages":[]}"#, .badRequest, "messages"),
                (#"{"model":"tiny","messages":[{"role":"wizard","content":"hi"}]}"#, .badRequest, "messages[0].role"),
                (#"{"model":"tiny","temperature":7,"messages":[{"role":"user","content":"hi"}]}"#, .badRequest, "temperature"),
                (#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#, .notFound, "model"),
            ]
            for (body, status, param) in cases {
                let response = try await Self.chat(client, body)
                #expect(response.status == status, "\(body)")
                let error = Self.json(response)?["error"]
                #expect(error?["message"]?.stringValue?.isEmpty == false)
                if let param { #expect(error?["param"]?.stringValue == param, "\(body)") }
            }
            var invalidUTF8 = ByteBuffer(string: #"{"model":"tiny","messages":[{"role":"user","content":""#)
            invalidUTF8.writeBytes([0xC3, 0x28])
            invalidUTF8.writeString(#""}]}"#)
            var headers = TestIdentity.fields(tenant: "acme")
            headers[.contentType] = "application/json"
            let garbled = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: invalidUTF8)
            #expect(garbled.status == .badRequest)
            let huge = ByteBuffer(string: #"{"model":"tiny","messages":[{"role":"user","content":""# + String(repeating: "a", count: 5 << 20) + #""}]}"#)
            let oversize = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: huge)
            #expect(oversize.status == .contentTooLarge)
            // Still serving.
            #expect(try await Self.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#).status == .ok)
        }
    }

    @Test func modelsListsTheCatalogsAvailableModels() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let signed = TestIdentity.fields(tenant: "acme")
            let list = Self.json(try await client.execute(uri: "/v1/models", method: .get, headers: signed))
            #expect(list?["object"] == "list")
            #expect(list?["data"]?.arrayValue?.map { $0["id"] } == ["tiny", "quick", "deep", "auto"])
            #expect(list?["data"]?[0]?["owned_by"] == "tests")
            #expect(try await client.execute(uri: "/v1/models/tiny", method: .get, headers: signed).status == .ok)
            #expect(try await client.execute(uri: "/v1/models/nope", method: .get, headers: signed).status == .notFound)
            // No signed identity, no answer: there is no default tenant.
            #expect(try await client.execute(uri: "/v1/models", method: .get).status == .unauthorized)
            let anonymous = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                                                     body: ByteBuffer(string: #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#))
            #expect(anonymous.status == .unauthorized)
            #expect(harness.models.requests.count == 0)
        }
    }
}

extension ChatAPITests {
    /// Fields validated as OpenAI documents them: a 400 naming the field, before any provider
    /// is asked (not a 200, and not the provider's words).
    @Test func fieldsAreValidatedAsOpenAIDocumentsThem() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let user = #""messages":[{"role":"user","content":"hi"}]"#
            let cases: [(String, String)] = [
                (#"{"model":"tiny","frequency_penalty":2.5,\#(user)}"#, "frequency_penalty"),
                (#"{"model":"tiny","presence_penalty":-3,\#(user)}"#, "presence_penalty"),
                (#"{"model":"tiny","logit_bias":{"50256":-101},\#(user)}"#, "logit_bias"),
                (#"{"model":"tiny","logit_bias":{"hello":1},\#(user)}"#, "logit_bias"),
                (#"{"model":"tiny","logprobs":true,"top_logprobs":21,\#(user)}"#, "top_logprobs"),
                (#"{"model":"tiny","top_logprobs":2,\#(user)}"#, "top_logprobs"),
                (#"{"model":"tiny","messages":[{"role":"user"}]}"#, "messages[0].content"),
                (#"{"model":"tiny","messages":[{"role":"system","content":"s"},{"role":"assistant"}]}"#, "messages[1].content"),
                (#"{"model":"tiny","tool_choice":{"type":"function","function":{"name":"lookup"}},"tools":[{"type":"function","function":{"name":"search"}}],\#(user)}"#, "tool_choice"),
                (#"{"model":"tiny","tool_choice":"required",\#(user)}"#, "tool_choice"),
                (#"{"model":"tiny","tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"search"}}],\#(user)}"#, "tool_choice"),
                (#"{"model":"tiny","response_format":{"type":"json_schema"},\#(user)}"#, "response_format.json_schema"),
                (#"{"model":"tiny","response_format":{"type":"json_schema","json_schema":{"schema":{}}},\#(user)}"#, "response_format.json_schema.name"),
                (#"{"model":"tiny","response_format":{"type":"yaml"},\#(user)}"#, "response_format.type"),
                (#"{"model":"tiny","n":1.5,\#(user)}"#, "n"),
                (#"{"model":"tiny","max_tokens":"ten",\#(user)}"#, "max_tokens"),
            ]
            for (body, param) in cases {
                let response = try await Self.chat(client, body)
                #expect(response.status == .badRequest, "\(body)")
                let error = Self.json(response)?["error"]
                #expect(error?["type"] == "invalid_request_error", "\(body)")
                #expect(error?["param"]?.stringValue == param, "\(body): \(String(buffer: response.body))")
                #expect(error?["message"]?.stringValue?.contains("not valid JSON") == false, "\(body)")
            }
            #expect(harness.models.requests.count == 0)
            // What is allowed still passes: an assistant turn that only calls a tool, a named tool choice.
            let allowed = #"{"model":"tiny","tools":[{"type":"function","function":{"name":"search"}}],"tool_choice":{"type":"function","function":{"name":"search"}},"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"search","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"found"},{"role":"user","content":"hi"}]}"#
            #expect(try await Self.chat(client, allowed).status == .ok)
        }
    }
}
