import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Postgres
import Testing
import TestSupport

/// The chat path as deployed: gateway and orchestrator processes, the test stack's Kafka, and
/// the real local model (SmolLM2-135M on llama-server) that the test script starts.
@Suite(.timeLimit(.minutes(5)))
struct ChatProcessTests {

    /// Starts an orchestrator and a gateway in front of it; `extra` goes to the orchestrator.
    static func start(portOffset: Int, key: String, orchestrator extra: [String: String]) async throws -> (ServiceProcessTests.RunningService, ServiceProcessTests.RunningService) {
        var environment = ["CONDUIT_COST_SERVICE_URL": "http://127.0.0.1:\(ServiceProcessTests.port(of: "cost-service") + portOffset)"]
        environment.merge(extra) { $1 }
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: portOffset, extraEnvironment: environment)
        let gateway = try ServiceProcessTests.RunningService("gateway", portOffset: portOffset, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": key, "CONDUIT_ADMIN_TENANT": TestEnvironment.uniqueName("tenant"), "CONDUIT_ORCHESTRATOR_URL": orchestrator.base,
        ])
        try await orchestrator.waitUntilReady()
        try await gateway.waitUntilReady()
        return (orchestrator, gateway)
    }

    @Test("end to end through the gateway against the real local model, and a hang-up cancels the call")
    func realLocalModelThroughTheGateway() async throws {
        let key = "cdt-test-\(UUID().uuidString)"
        let usageTopic = TestEnvironment.uniqueName("usage")
        let (orchestrator, gateway) = try await Self.start(portOffset: 50, key: key, orchestrator: ["CONDUIT_ORCHESTRATOR_USAGE_TOPIC": usageTopic])
        // The cost-service keeps the ledger of what the chat path spends.
        let costService = try ServiceProcessTests.RunningService("cost-service", portOffset: 50, extraEnvironment: [
            "CONDUIT_COST_SERVICE_USAGE_TOPIC": usageTopic, "CONDUIT_COST_SERVICE_GROUP": TestEnvironment.uniqueName("cost"),
        ])
        defer {
            orchestrator.process.signal(SIGKILL)
            gateway.process.signal(SIGKILL)
            costService.process.signal(SIGKILL)
        }
        let auth = [("Authorization", "Bearer \(key)")]

        let models = try await gateway.http.execute(HTTPRequest(url: gateway.base + "/v1/models", headers: auth))
        #expect(String(decoding: try await models.body.collect(upTo: 1 << 20), as: UTF8.self).contains(#""id":"smollm2-135m""#))

        // An image for a model that reads none: the caller's 400, however often (llama.cpp itself
        // answers 500, which used to open the deployment's circuit for every tenant).
        for _ in 0..<4 {
            let image = try await gateway.post("/v1/chat/completions", #"{"model":"smollm2-135m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#, headers: auth)
            #expect(image.status == 400, "\(image.body)")
            #expect(image.body.contains(#""param":"messages[0].content[1]""#) && image.body.contains("image_input_not_supported"))
        }

        let answer = try await gateway.post("/v1/chat/completions", #"{"model":"smollm2-135m","max_tokens":16,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#, headers: auth)
        #expect(answer.status == 200, "\(answer.body)")
        let completion = try JSONDecoder().decode(ChatCompletion.self, from: Data(answer.body.utf8))
        #expect(completion.model == "smollm2-135m")
        #expect(completion.choices.first?.message.content?.plainText.isEmpty == false)
        #expect((1...16).contains(completion.usage?.completionTokens ?? 0))

        // Streaming with usage, relayed by the gateway as it arrives.
        let stream = try await gateway.http.execute(HTTPRequest(
            method: "POST", url: gateway.base + "/v1/chat/completions", headers: auth + [("Content-Type", "application/json")],
            body: Array(#"{"model":"smollm2-135m","max_tokens":12,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}"#.utf8)))
        #expect(stream.status == 200)
        #expect(stream.header("Content-Type")?.hasPrefix("text/event-stream") == true)
        var data: [String] = []
        for try await event in stream.body.events { data.append(event.data) }
        #expect(data.last == "[DONE]")
        let chunks = data.dropLast().compactMap { try? JSONDecoder().decode(ChatCompletionChunk.self, from: Data($0.utf8)) }
        #expect(chunks.count == data.count - 1)
        let streamedText = chunks.compactMap { $0.choices.first?.delta.content }.joined()
        #expect(!streamedText.isEmpty)
        #expect((chunks.last?.usage?.completionTokens ?? 0) > 0)

        // A client that hangs up mid-stream: the gateway drops its hop, the orchestrator notices
        // and stops the model, and records the request as closed by the client.
        let long = try await gateway.http.execute(HTTPRequest(
            method: "POST", url: gateway.base + "/v1/chat/completions", headers: auth + [("Content-Type", "application/json")],
            body: Array(#"{"model":"smollm2-135m","max_tokens":400,"stream":true,"messages":[{"role":"user","content":"Write a long story about a lighthouse."}]}"#.utf8)))
        var iterator = long.body.makeAsyncIterator()
        _ = try await iterator.next()
        _ = consume iterator

        let all = try await TestEnvironment.readMessages(usageTopic, count: 7).map { try EventCoding.decoder().decode(UsageEvent.self, from: Data($0.value)) }
        // The four refused image requests are recorded as such, with no deployment and no cost.
        #expect(all.filter { $0.status == "invalid_request_error" && $0.deployment == nil }.count == 4)
        let events = all.filter { $0.status != "invalid_request_error" }
        #expect(events.filter { $0.status == "ok" }.count == 2)
        let closed = try #require(events.first { $0.status == "client_closed" })
        #expect(closed.completionTokens < 400)
        #expect(events.allSatisfy { $0.deployment == "local-smollm2" && $0.model == "smollm2-135m" })

        // Every event is in the ledger once, at the cost the event carries.
        let postgres = RetrieverProcessTests.postgres()
        defer { postgres.shutdown() }
        func ledgered() async throws -> [(String, Int, Double)] {
            var rows: [(String, Int, Double)] = []
            for event in all {
                for row in try await postgres.query("SELECT status, completion_tokens, cost_usd::text FROM cost.usage_ledger WHERE event_id = $1", event.eventID) {
                    rows.append((try row.decode(at: 0), try row.decode(at: 1), Double(try row.decode(String.self, at: 2)) ?? -1))
                }
            }
            return rows
        }
        #expect(try await eventually(within: .seconds(60)) { try await ledgered().count == all.count })
        let rows = try await ledgered()
        #expect(rows.map(\.0).sorted() == all.map(\.status).sorted())
        let ledgerCost = rows.map(\.2).reduce(0, +)
        let eventCost = all.map { $0.costUSD ?? 0 }.reduce(0, +)
        #expect(abs(ledgerCost - eventCost) < 1e-9)
        costService.process.signal(SIGTERM)
        #expect(await costService.process.wait() == 0)
        await costService.http.shutdown()
        await gateway.http.shutdown()
        await orchestrator.http.shutdown()
    }

    @Test("the official OpenAI Python SDK passes its script against the gateway")
    func openAIPythonSDK() async throws {
        let python = try #require(ProcessInfo.processInfo.environment["CONDUIT_TEST_SDK_PYTHON"], "make test provides the SDK's virtualenv")
        let upstream = try ToolsUpstream()
        let catalog = TestEnvironment.scratchDirectory("sdk") + "/models.yaml"
        try """
        models:
          - name: smollm2-135m
            deployments:
              - {id: local-smollm2, provider: openai, model: SmolLM2-135M-Instruct, base_url: "${CONDUIT_LOCAL_MODEL_URL:-http://127.0.0.1:58080/v1}", timeouts: {first_byte_s: 60, total_s: 120}}
          - name: sdk-tools
            deployments:
              - {id: sdk-tools, provider: openai, model: tools, base_url: "\(upstream.server.baseURL)/v1"}
          - name: sdk-limited
            deployments:
              - {id: sdk-limited, provider: openai, model: limited, base_url: "\(upstream.server.baseURL)/v1"}
        """.write(toFile: catalog, atomically: true, encoding: .utf8)
        let key = "cdt-test-\(UUID().uuidString)"
        let (orchestrator, gateway) = try await Self.start(portOffset: 60, key: key, orchestrator: ["CONDUIT_MODEL_CATALOG": catalog])
        defer {
            orchestrator.process.signal(SIGKILL)
            gateway.process.signal(SIGKILL)
        }
        let output = TestEnvironment.scratchDirectory("sdk") + "/sdk-\(UUID().uuidString.prefix(6)).out"
        var environment = ProcessInfo.processInfo.environment
        environment["CONDUIT_SDK_BASE_URL"] = gateway.base + "/v1"
        environment["CONDUIT_SDK_API_KEY"] = key
        environment["CONDUIT_SDK_TOOLS_MODEL"] = "sdk-tools"
        environment["CONDUIT_SDK_LIMITED_MODEL"] = "sdk-limited"
        let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/SDK/openai_sdk_test.py").path
        let status = await (try ChildProcess(executable: python, arguments: [script], environment: environment, outputPath: output)).wait()
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(printed)")
        #expect(printed.contains("openai-sdk: all checks passed"))
        await gateway.http.shutdown()
        await orchestrator.http.shutdown()
    }
}

/// An OpenAI-compatible upstream for the SDK script: model `tools` calls `get_weather` and then
/// answers from the tool's result (streamed calls arrive in pieces); model `limited` always
/// answers 429 with a Retry-After.
final class ToolsUpstream: Sendable {
    let server: TestHTTPServer

    init() throws {
        server = try TestHTTPServer { request, connection in
            let body = JSONValue.parse(request.body)
            guard body?["model"] == "tools" else {
                connection.respond(status: 429, headers: ["Content-Type": "application/json", "Retry-After": "30"],
                                   body: Array(#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#.utf8))
                return
            }
            let messages = body?["messages"]?.arrayValue ?? []
            let head = #""id":"up","created":1,"model":"tools""#
            if let result = messages.last, result["role"] == "tool" {
                let celsius = JSONValue.parse(Array((result["content"]?.stringValue ?? "").utf8))?["celsius"]?.intValue ?? -1
                let answer = #"{\#(head),"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"It is \#(celsius) degrees in Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":8,"total_tokens":48}}"#
                connection.respond(headers: ["Content-Type": "application/json"], body: Array(answer.utf8))
            } else if body?["stream"] == true {
                func frame(_ delta: String, _ finish: String = "null") -> String {
                    #"data: {\#(head),"object":"chat.completion.chunk","choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(finish)}]}"# + "\n\n"
                }
                connection.startChunked(contentType: "text/event-stream")
                connection.writeChunk(frame(#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]}"#))
                connection.writeChunk(frame(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}"#))
                connection.writeChunk(frame(#"{"tool_calls":[{"index":0,"function":{"arguments":"ty\": \"Paris\"}"}}]}"#))
                connection.writeChunk(frame("{}", #""tool_calls""#))
                connection.writeChunk(#"data: {\#(head),"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}}"# + "\n\n")
                connection.writeChunk("data: [DONE]\n\n")
                connection.endChunks()
            } else {
                let answer = #"{\#(head),"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}}"#
                connection.respond(headers: ["Content-Type": "application/json"], body: Array(answer.utf8))
            }
        }
    }
}
