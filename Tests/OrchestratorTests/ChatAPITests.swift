import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import Logging
import NIOCore
@testable import Orchestrator
import Testing
import TestSupport

/// The orchestrator's chat API over a live server, with a local server speaking OpenAI's wire
/// format upstream and the test stack's Kafka for usage events.
@Suite(.timeLimit(.minutes(2)))
struct ChatAPITests {
    /// An OpenAI-compatible upstream whose behaviour the last user message picks: `fail`, `cut`,
    /// `slow` (a long stream, one token per 100 ms), anything else answers "Hello there".
    final class Upstream: Sendable {
        let server: TestHTTPServer
        private let closedEarly = Locked(0)
        var streamsClosedByClient: Int { closedEarly.withLock { $0 } }
        private let received = Locked(0)
        var requestCount: Int { received.withLock { $0 } }

        init() throws {
            let closedEarly = self.closedEarly
            let received = self.received
            server = try TestHTTPServer { request, connection in
                received.withLock { $0 += 1 }
                let body = JSONValue.parse(request.body)
                let last = body?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
                let stream = body?["stream"] == true
                let head = #""id":"up-1","object":"chat.completion.chunk","created":1,"model":"tiny""#
                func frame(_ delta: String, finish: String? = nil) -> String {
                    #"data: {\#(head),"choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(finish.map { "\"\($0)\"" } ?? "null")}]}"# + "\n\n"
                }
                switch last {
                case "fail":
                    connection.respond(status: 500, headers: ["Content-Type": "application/json"], body: Array(#"{"error":{"message":"boom","type":"server_error"}}"#.utf8))
                case "cut":
                    connection.startChunked(contentType: "text/event-stream")
                    connection.writeChunk(frame(#"{"role":"assistant","content":""}"#))
                    connection.writeChunk(frame(#"{"content":"Hel"}"#))
                    Thread.sleep(forTimeInterval: 0.05)
                    connection.close()
                case "quiet":
                    // A server that never reports usage (some OpenAI-compatible ones do not).
                    connection.startChunked(contentType: "text/event-stream")
                    connection.writeChunk(frame(#"{"role":"assistant","content":""}"#))
                    connection.writeChunk(frame(#"{"content":"Twelve chars"}"#))
                    connection.writeChunk(frame("{}", finish: "stop"))
                    connection.writeChunk("data: [DONE]\n\n")
                    connection.endChunks()
                case "slow":
                    connection.startChunked(contentType: "text/event-stream")
                    connection.writeChunk(frame(#"{"role":"assistant","content":""}"#))
                    // A minute of ticks: longer than any starved test machine needs to notice the hang-up.
                    for _ in 0..<600 {
                        Thread.sleep(forTimeInterval: 0.1)
                        if !connection.writeChunk(frame(#"{"content":"tick "}"#)) {
                            closedEarly.withLock { $0 += 1 }
                            return
                        }
                    }
                    connection.writeChunk("data: [DONE]\n\n")
                    connection.endChunks()
                default:
                    if stream {
                        connection.startChunked(contentType: "text/event-stream")
                        connection.writeChunk(frame(#"{"role":"assistant","content":""}"#))
                        connection.writeChunk(frame(#"{"content":"Hello"}"#))
                        connection.writeChunk(frame(#"{"content":" there"}"#))
                        connection.writeChunk(frame("{}", finish: "stop"))
                        connection.writeChunk(#"data: {\#(head),"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"# + "\n\n")
                        connection.writeChunk("data: [DONE]\n\n")
                        connection.endChunks()
                    } else {
                        let answer = #"{"id":"up-1","object":"chat.completion","created":1,"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#
                        connection.respond(headers: ["Content-Type": "application/json"], body: Array(answer.utf8))
                    }
                }
            }
        }
    }

    struct Harness {
        let upstream: Upstream
        let usageTopic: String

        init() throws {
            upstream = try Upstream()
            usageTopic = TestEnvironment.uniqueName("usage")
        }

        func app() async throws -> some ApplicationProtocol {
            // One file per harness: tests run in parallel, each with its own upstream.
            let catalog = TestEnvironment.scratchDirectory("catalog") + "/models-\(UUID().uuidString).yaml"
            try """
            models:
              - name: tiny
                owned_by: tests
                deployments:
                  - id: tiny-local
                    provider: openai
                    model: tiny
                    base_url: \(upstream.server.baseURL)/v1
                    price_per_million: {input: 1000, output: 2000}
            """.write(toFile: catalog, atomically: true, encoding: .utf8)
            var values = ProcessInfo.processInfo.environment
            values["CONDUIT_MODEL_CATALOG"] = catalog
            values["CONDUIT_PROVIDER_MAX_RETRIES"] = "0"
            values["CONDUIT_ORCHESTRATOR_USAGE_TOPIC"] = usageTopic
            values["CONDUIT_ORCHESTRATOR_PORT"] = "0"
            // These tests are about the chat path; the semantic cache (tested on its own) would let
            // one test's answer serve another's identical request.
            values["CONDUIT_CACHE_ENABLED"] = "false"
            values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
            let configuration = try ServiceConfiguration(service: .orchestrator, environment: ConduitEnvironment(values))
            return try await buildApplication(configuration: configuration, logger: Logger(label: "orchestrator-test"))
        }
    }

    static func chat(_ client: some TestClientProtocol, _ body: String, requestID: String = UUID().uuidString) async throws -> TestResponse {
        var headers = TestIdentity.fields(tenant: "acme", keyID: "key-1", requestID: requestID)
        headers[.contentType] = "application/json"
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    static func json(_ response: TestResponse) -> JSONValue? { JSONValue.parse(Array(response.body.readableBytesView)) }

    static func dataLines(_ response: TestResponse) -> [String] {
        String(buffer: response.body).components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    @Test func jsonCompletionNamesThePublicModelAndEmitsAUsageEvent() async throws {
        let harness = try Harness()
        let requestID = UUID().uuidString
        try await harness.app().test(.live) { client in
            let response = try await Self.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#, requestID: requestID)
            #expect(response.status == .ok)
            let body = try #require(Self.json(response))
            #expect(body["object"] == "chat.completion")
            #expect(body["model"] == "tiny")
            #expect(body["choices"]?[0]?["message"]?["content"] == "Hello there")
            #expect(body["usage"]?["total_tokens"] == 11)
            #expect(response.headers[HTTPField.Name("X-Conduit-Deployment")!] == "tiny-local")
        }
        let events = try await TestEnvironment.readMessages(harness.usageTopic, count: 1)
        let event = try EventCoding.decoder().decode(UsageEvent.self, from: Data(events[0].value))
        #expect(event.requestID == requestID)
        // The event's identity is the server's (a UUIDv7), whatever request id the caller chose.
        #expect(event.eventID != requestID)
        #expect(UUID(uuidString: event.eventID) != nil && Array(event.eventID)[14] == "7")
        #expect(event.tenant == "acme")
        #expect(event.keyID == "key-1")
        #expect(event.model == "tiny" && event.servedModel == "tiny" && event.deployment == "tiny-local")
        #expect(event.promptTokens == 9 && event.completionTokens == 2)
        #expect(abs((event.costUSD ?? 0) - (9 * 1000 + 2 * 2000) / 1e6) < 1e-9)
        #expect(event.status == "ok")
        #expect(event.cacheHit == false)
    }

    @Test func streamsChunksThenUsageOnlyWhenAskedThenDone() async throws {
        let harness = try Harness()
        try await harness.app().test(.live) { client in
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

    @Test func aStreamWithoutUpstreamUsageGetsAnEstimateNotZero() async throws {
        let harness = try Harness()
        try await harness.app().test(.live) { client in
            let response = try await Self.chat(client, #"{"model":"tiny","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"quiet"}]}"#)
            let chunks = Self.dataLines(response).dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
            let usage = try #require(chunks.last?["usage"])
            // "Twelve chars" is 12 characters: about 3 tokens at four characters a token.
            #expect(usage["completion_tokens"] == 3)
            #expect((usage["prompt_tokens"]?.intValue ?? 0) > 0)
            #expect(Self.dataLines(response).last == "[DONE]")
        }
    }

    @Test func anUpstreamFailureBeforeTheFirstByteIsAnHTTPErrorAndAfterItAnErrorEvent() async throws {
        let harness = try Harness()
        try await harness.app().test(.live) { client in
            let before = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"fail"}]}"#)
            #expect(before.status == .badGateway)
            #expect(Self.json(before)?["error"]?["type"] == "upstream_error")

            let after = try await Self.chat(client, #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"cut"}]}"#)
            #expect(after.status == .ok)
            let lines = Self.dataLines(after)
            #expect(lines.contains { $0.contains(#""content":"Hel""#) })
            #expect(lines.last.flatMap { JSONValue.parse(Array($0.utf8)) }?["error"]?["type"] == "upstream_error")
            #expect(!lines.contains("[DONE]"))
        }
    }

    @Test func aClientThatDisconnectsCancelsTheUpstreamCall() async throws {
        let harness = try Harness()
        try await harness.app().test(.live) { client in
            let http = HTTPClient(logger: Logger(label: "client"))
            let response = try await http.execute(HTTP.HTTPRequest(
                method: "POST", url: "http://127.0.0.1:\(client.port!)/v1/chat/completions",
                headers: [("Content-Type", "application/json")] + TestIdentity.headers(tenant: "acme"),
                body: Array(#"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"slow"}]}"#.utf8)))
            var iterator = response.body.makeAsyncIterator()
            _ = try await iterator.next()
            _ = consume iterator  // hang up after the first bytes
            #expect(try await eventually(within: .seconds(50)) { harness.upstream.streamsClosedByClient == 1 })
            await http.shutdown()
        }
    }

    @Test func badInputGetsTheEnvelopeNeverACrash() async throws {
        let harness = try Harness()
        try await harness.app().test(.live) { client in
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
        let harness = try Harness()
        try await harness.app().test(.live) { client in
            let signed = TestIdentity.fields(tenant: "acme")
            let list = Self.json(try await client.execute(uri: "/v1/models", method: .get, headers: signed))
            #expect(list?["object"] == "list")
            #expect(list?["data"]?.arrayValue?.map { $0["id"] } == ["tiny"])
            #expect(list?["data"]?[0]?["owned_by"] == "tests")
            #expect(try await client.execute(uri: "/v1/models/tiny", method: .get, headers: signed).status == .ok)
            #expect(try await client.execute(uri: "/v1/models/nope", method: .get, headers: signed).status == .notFound)
            // No signed identity, no answer: there is no default tenant.
            #expect(try await client.execute(uri: "/v1/models", method: .get).status == .unauthorized)
            let anonymous = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                                                     body: ByteBuffer(string: #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#))
            #expect(anonymous.status == .unauthorized)
            #expect(harness.upstream.requestCount == 0)
        }
    }
}

extension ChatAPITests {
    /// Fields validated as OpenAI documents them: a 400 naming the field, before any provider
    /// is asked (not a 200, and not the provider's words).
    @Test func fieldsAreValidatedAsOpenAIDocumentsThem() async throws {
        let harness = try Harness()
        try await harness.app().test(.live) { client in
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
            #expect(harness.upstream.requestCount == 0)
            // What is allowed still passes: an assistant turn that only calls a tool, a named tool choice.
            let allowed = #"{"model":"tiny","tools":[{"type":"function","function":{"name":"search"}}],"tool_choice":{"type":"function","function":{"name":"search"}},"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"search","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"found"},{"role":"user","content":"hi"}]}"#
            #expect(try await Self.chat(client, allowed).status == .ok)
        }
    }
}
