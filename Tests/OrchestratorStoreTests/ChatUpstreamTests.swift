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

/// The orchestrator as it runs: a live server, the real provider path to a local server
/// speaking OpenAI's wire format, and the test stack's Kafka for usage events. (The chat API's
/// behaviour with in-process fakes is in OrchestratorTests.ChatAPITests.)
@Suite(.timeLimit(.minutes(2)))
struct ChatUpstreamTests {
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
            // No cost-service here: budgets are BudgetStageTests' and BudgetProcessTests'.
            values["CONDUIT_COST_SERVICE_URL"] = "http://127.0.0.1:9"
            values["CONDUIT_BUDGET_UNAVAILABLE"] = "allow"
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

}
