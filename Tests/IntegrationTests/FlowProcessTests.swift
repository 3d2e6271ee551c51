import ConduitProtocol
import Foundation
import HTTP
import Logging
import Testing
import TestSupport

/// Flows end to end: the gateway and orchestrator processes over the test stack, a scripted
/// model (a local server speaking OpenAI's wire format whose answers depend on the system
/// prompt), the shipped flows from `deploy/flows` and uploaded ones. The orchestrator's
/// provider retries are off, so a retried step is the flow's own retry.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FlowProcessTests {
    static let offset = 270

    /// Answers by what the system prompt asks; fails the first two calls about `flaky.txt`
    /// (500), and answers a `slow` question after ten seconds.
    final class ScriptedModel: Sendable {
        let server: TestHTTPServer
        let flakyCalls = Locked(0)
        let calls = Locked(0)

        init() throws {
            let flakyCalls = self.flakyCalls
            let calls = self.calls
            server = try TestHTTPServer { request, connection in
                calls.withLock { $0 += 1 }
                let body = JSONValue.parse(request.body)
                let messages = body?["messages"]?.arrayValue ?? []
                let system = messages.first { $0["role"] == "system" }?["content"]?.stringValue ?? ""
                let user = messages.last { $0["role"] == "user" }?["content"]?.stringValue ?? ""
                if user.contains("flaky.txt"), flakyCalls.withLock({ $0 += 1; return $0 }) <= 2 {
                    connection.respond(status: 500, body: Array(#"{"error":{"message":"overloaded","type":"server_error"}}"#.utf8))
                    return
                }
                if user == "slow" { Thread.sleep(forTimeInterval: 10) }
                let answer = switch true {
                case system.contains("sentiment"): "positive"
                case system.contains("people, organisations and places"): "Ada Lovelace, London"
                case system.contains("invoice, contract"): "report"
                case system.contains("Summarise the text"): "Ada wrote the first program."
                case system.contains("Summarise the file"): "A file about engines."
                case user.hasPrefix("Describe what an image"): "A cat on a sofa."
                default: "Echo: \(user)"
                }
                let message = JSONValue.object(["role": "assistant", "content": .string(answer)]).jsonString
                connection.respond(headers: ["Content-Type": "application/json"], body: Array(
                    #"{"id":"c-1","object":"chat.completion","created":1,"model":"scripted","choices":[{"index":0,"message":\#(message),"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4}}"#.utf8))
            }
        }
    }

    static func run(_ gateway: String, key: String, _ flow: String, _ body: String) async throws -> GroundedChatProcessTests.Reply {
        try await GroundedChatProcessTests.call(gateway, "POST", "/v1/flows/\(flow)/runs", key: key, json: body)
    }

    static func step(_ run: JSONValue?, _ name: String) -> JSONValue? {
        run?["steps"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    @Test func shippedAndUploadedFlowsRunThroughTheGateway() async throws {
        let model = try ScriptedModel()
        defer { model.server.stop() }
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: Self.offset, extraEnvironment: [
            "CONDUIT_MODEL_CATALOG": try ServiceProcessTests.scriptedCatalog("flows", upstream: model.server.baseURL, input: 1, output: 2), "CONDUIT_CACHE_ENABLED": "false", "CONDUIT_PROVIDER_MAX_RETRIES": "0",
            "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": TestEnvironment.uniqueName("conduit.test.usage"),
            "CONDUIT_FLOWS_DIR": TestEnvironment.packageRoot.appendingPathComponent("deploy/flows").path,
        ])
        let root = "cdt-flows-\(UUID().uuidString)"
        let gatewayService = try ServiceProcessTests.RunningService("gateway", portOffset: Self.offset, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": root, "CONDUIT_ADMIN_TENANT": TestEnvironment.uniqueName("root"), "CONDUIT_ORCHESTRATOR_URL": orchestrator.base,
        ])
        defer { for service in [orchestrator, gatewayService] { service.process.signal(SIGKILL) } }
        for service in [orchestrator, gatewayService] { try await service.waitUntilReady() }
        let gateway = gatewayService.base
        let tenant = TestEnvironment.uniqueName("flows")
        #expect(try await GroundedChatProcessTests.call(gateway, "POST", "/v1/tenants", key: root, json: #"{"name":"\#(tenant)","id":"\#(tenant)"}"#).status == 201)
        let made = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/keys", key: root, json: #"{"tenant":"\#(tenant)","role":"developer","name":"flows"}"#)
        let key = try #require(made.json?["key"]?.stringValue, "\(made.body)")

        // The shipped flows are there (the schema may still be migrating for a moment).
        #expect(try await eventually(within: .seconds(30)) {
            try await GroundedChatProcessTests.call(gateway, "GET", "/v1/flows", key: key).body.contains("document-analysis")
        })

        // The shipped agent flow loaded, and its tools are listed through the gateway (no MCP
        // servers here: the built-ins only).
        let tools = try await GroundedChatProcessTests.call(gateway, "GET", "/v1/agents/tools", key: key)
        #expect(tools.status == 200, "\(tools.body)")
        let toolNames = Set(tools.json?["data"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
        #expect(toolNames == ["search_documents", "run_flow"], "\(toolNames)")
        #expect(try await GroundedChatProcessTests.call(gateway, "GET", "/v1/flows", key: key).body.contains(#""name":"agent""#))

        // Document analysis: extract, a parallel group of three model calls, combine.
        let html = "<html><body><h1>Notes</h1><p>Ada Lovelace wrote in London.</p><script>track()</script></body></html>"
        let analysis = try await Self.run(gateway, key: key, "document-analysis",
                                          JSONValue.object(["inputs": ["content": .string(html), "content_type": "text/html", "model": "scripted"]]).jsonString)
        #expect(analysis.status == 200, "\(analysis.body)")
        #expect(analysis.json?["status"] == "succeeded")
        #expect(analysis.json?["output"]?["sentiment"] == "positive")
        #expect(analysis.json?["output"]?["entities"] == "Ada Lovelace, London")
        #expect(analysis.json?["output"]?["category"] == "report")
        #expect(Self.step(analysis.json, "extract")?["output"]?["text"] == "Notes Ada Lovelace wrote in London.")
        let group = ["sentiment", "entities", "classification"].compactMap { Self.step(analysis.json, $0) }
        let report = try #require(Self.step(analysis.json, "report"))
        let formatter = ISO8601DateFormatter()
        let reportStart = try #require(report["started_at"]?.stringValue.flatMap(formatter.date(from:)))
        #expect(group.count == 3 && group.allSatisfy { ($0["ended_at"]?.stringValue.flatMap(formatter.date(from:)) ?? .distantFuture) <= reportStart })

        // File routing: an image goes to its branch; a text file to the summary, whose model
        // fails twice and whose retry (exponential) then succeeds.
        let image = try await Self.run(gateway, key: key, "file-routing", #"{"inputs":{"filename":"cat.png","content_type":"image/png","model":"scripted"}}"#)
        #expect(image.json?["output"]?["route"] == "image", "\(image.body)")
        #expect(image.json?["output"]?["result"] == "A cat on a sofa.")
        #expect(Self.step(image.json, "text")?["status"] == "skipped" && Self.step(image.json, "pdf")?["status"] == "skipped")
        let text = try await Self.run(gateway, key: key, "file-routing",
                                      #"{"inputs":{"filename":"flaky.txt","content_type":"text/plain","content":"Engines.","model":"scripted"}}"#)
        #expect(text.json?["status"] == "succeeded", "\(text.body)")
        #expect(text.json?["output"]?["result"] == "A file about engines.")
        #expect(Self.step(text.json, "text")?["attempts"] == 3)

        // A PDF goes to extraction, page by page.
        let pdf = Data(MiniPDF.make(pages: ["Invoice 42 for engines.", "Due in thirty days."])).base64EncodedString()
        let routed = try await Self.run(gateway, key: key, "file-routing",
                                        #"{"inputs":{"filename":"invoice.pdf","content_type":"application/pdf","content":"\#(pdf)"}}"#)
        #expect(routed.json?["output"]?["route"] == "pdf", "\(routed.body)")
        #expect(routed.json?["output"]?["result"]?.stringValue?.contains("Invoice 42 for engines.") == true)
        let pages = Self.step(routed.json, "pdf")?["output"]?["pages"]?.arrayValue ?? []
        #expect(pages.count == 2 && pages[1]["page"] == 2 && pages[1]["text"]?.stringValue?.contains("thirty days") == true)
        let broken = try await Self.run(gateway, key: key, "file-routing",
                                        #"{"inputs":{"filename":"bad.pdf","content_type":"application/pdf","content":"\#(Data("not a pdf".utf8).base64EncodedString())"}}"#)
        #expect(broken.json?["status"] == "failed")
        #expect(Self.step(broken.json, "pdf")?["error"]?.stringValue?.hasPrefix("the PDF cannot be read") == true, "\(broken.body)")

        // Two nested flows side by side, combined.
        let brief = try await Self.run(gateway, key: key, "document-brief", #"{"inputs":{"content":"Ada Lovelace wrote in London.","model":"scripted"}}"#)
        #expect(brief.json?["output"]?["summary"] == "Ada wrote the first program.", "\(brief.body)")
        #expect(brief.json?["output"]?["sentiment"] == "positive")

        // Uploads: a cycle is refused naming its steps; a fallback stands in for a failed step.
        let cycle = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/flows", key: key, json: """
            name: loop
            steps:
              - {name: first, executor: transform, depends_on: second, config: {value: 1}}
              - {name: second, executor: transform, depends_on: first, config: {value: 2}}
            """)
        #expect(cycle.status == 400)
        #expect(cycle.json?["error"]?["message"]?.stringValue?.contains("cycle") == true && cycle.body.contains("first") && cycle.body.contains("second"))
        let uploaded = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/flows", key: key, json: """
            name: rescue
            steps:
              - name: ask
                executor: chat
                on_error: {fallback: canned}
                config: {model: no-such-model, messages: [{role: user, content: hi}]}
              - {name: canned, executor: transform, config: {value: {content: "a canned answer"}}}
            output: "{{ steps.ask.output.content }}"
            """)
        #expect(uploaded.status == 201, "\(uploaded.body)")
        let rescued = try await Self.run(gateway, key: key, "rescue", #"{"inputs":{}}"#)
        #expect(rescued.json?["status"] == "succeeded" && rescued.json?["output"] == "a canned answer", "\(rescued.body)")
        #expect(Self.step(rescued.json, "ask")?["status"] == "failed" && Self.step(rescued.json, "ask")?["recovered_by"] == "canned")

        // A streamed run: its steps as events, then the record, then [DONE].
        let streamed = try await Self.run(gateway, key: key, "summarize", #"{"inputs":{"text":"Ada.","model":"scripted"},"stream":true}"#)
        #expect(streamed.header("content-type")?.hasPrefix("text/event-stream") == true)
        #expect(streamed.body.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") } == ["event: step.started", "event: step.finished", "event: run.finished"])
        #expect(streamed.body.hasSuffix("data: [DONE]\n\n"))

        // An async run, cancelled while its model call is in flight.
        _ = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/flows", key: key, json: """
            name: patient
            steps: [{name: wait, executor: chat, config: {model: scripted, messages: [{role: user, content: slow}]}}]
            """)
        let started = try await Self.run(gateway, key: key, "patient", #"{"inputs":{},"async":true}"#)
        #expect(started.status == 202, "\(started.body)")
        let id = try #require(started.json?["id"]?.stringValue)
        try await Task.sleep(for: .milliseconds(500))
        let cancelled = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/flows/patient/runs/\(id)/cancel", key: key)
        #expect(cancelled.json?["status"] == "cancelled", "\(cancelled.body)")
        let stored = try await GroundedChatProcessTests.call(gateway, "GET", "/v1/flows/patient/runs/\(id)", key: key)
        #expect(stored.json?["status"] == "cancelled", "\(stored.status) \(stored.body)")
    }
}
