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

/// The flows' API through the orchestrator's router, over fake models and an in-memory store:
/// the shipped flows load and are listed, uploads are validated with paths, runs check their
/// inputs, run every step through the chat pipeline and bill the caller, stream and cancel.
struct FlowAPITests {
    static var flowsDirectory: String { TestEnvironment.packageRoot.appendingPathComponent("deploy/flows").path }

    struct Harness {
        var models = FakeModels()
        var usage = RecordedUsage()
        var store = InMemoryFlowStore()

        func app() throws -> some ApplicationProtocol {
            var dependencies = OrchestratorDependencies.fakes(models: models, usage: usage)
            dependencies.flows = store
            return Application(router: try Fakes.router(dependencies, environment: ["CONDUIT_FLOWS_DIR": FlowAPITests.flowsDirectory]))
        }
    }

    static func call(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil,
                     tenant: String = "acme", roles: [String] = ["developer"]) async throws -> TestResponse {
        var headers = TestIdentity.fields(tenant: tenant, keyID: "key-1", roles: roles)
        headers[.contentType] = path == "/v1/flows" ? "application/yaml" : "application/json"
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    static func json(_ response: TestResponse) -> JSONValue? { JSONValue.parse(Array(response.body.readableBytesView)) }

    @Test func shippedFlowsAreListedWithTheirInputsSchemas() async throws {
        try await Harness().app().test(.router) { client in
            let listed = try await Self.call(client, .get, "/v1/flows")
            #expect(listed.status == .ok)
            let names = Self.json(listed)?["data"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            #expect(Set(names).isSuperset(of: ["document-analysis", "file-routing", "summarize", "document-brief"]))
            let analysis = Self.json(listed)?["data"]?.arrayValue?.first { $0["name"] == "document-analysis" }
            #expect(analysis?["inputs"]?["required"] == ["content"])
            #expect(analysis?["inputs"]?["properties"]?["content_type"]?["default"] == "text/plain")
            #expect(analysis?["shipped"] == true)
            // A viewer reads; a viewer does not run.
            #expect(try await Self.call(client, .get, "/v1/flows", roles: ["viewer"]).status == .ok)
            #expect(try await Self.call(client, .post, "/v1/flows/summarize/runs", #"{"inputs":{"text":"x"}}"#, roles: ["viewer"]).status == .forbidden)
        }
    }

    @Test func aShippedFlowRunsThroughTheChatPipelineAndBillsTheCaller() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let response = try await Self.call(client, .post, "/v1/flows/document-analysis/runs",
                                               #"{"inputs":{"content":"<p>Ada wrote <b>programs</b></p>","content_type":"text/html","model":"tiny"}}"#)
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let run = try #require(Self.json(response))
            #expect(run["status"] == "succeeded")
            #expect(run["output"]?["sentiment"] == "Hello there")
            #expect(run["output"]?["characters"] == 18)
            let steps = run["steps"]?.arrayValue ?? []
            #expect(steps.map { $0["status"] } == Array(repeating: "succeeded", count: 5))
            #expect(steps.first { $0["name"] == "sentiment" }?["output"]?["usage"]?["prompt_tokens"] == 9)
            // Three chat steps, each billed to the caller and tagged with the run.
            let events = harness.usage.recorded.filter { $0.flowRunID != nil }
            #expect(events.count == 3)
            #expect(events.allSatisfy { $0.tenant == "acme" && $0.flow == "document-analysis" && $0.flowRunID == run["id"]?.stringValue })
            // The extracted text reached the model, without its tags.
            #expect(harness.models.requests.contains { $0.messages.last?.content?.plainText == "Ada wrote programs" })
            // The record is kept.
            let id = try #require(run["id"]?.stringValue)
            let again = try await Self.call(client, .get, "/v1/flows/document-analysis/runs/\(id)")
            #expect(Self.json(again)?["status"] == "succeeded")
            #expect(try await Self.call(client, .get, "/v1/flows/document-analysis/runs/\(id)", tenant: "other").status == .notFound)
            // Two shipped flows nested in a third.
            let brief = try await Self.call(client, .post, "/v1/flows/document-brief/runs", #"{"inputs":{"content":"Ada wrote programs.","model":"tiny"}}"#)
            #expect(Self.json(brief)?["status"] == "succeeded", "\(String(buffer: brief.body))")
            #expect(Self.json(brief)?["output"]?["summary"] == "Hello there")
        }
    }

    @Test func uploadsAreValidatedWithThePathOfTheProblem() async throws {
        try await Harness().app().test(.router) { client in
            let cycle = try await Self.call(client, .post, "/v1/flows", """
                name: loop
                steps:
                  - {name: a, executor: transform, config: {value: "{{ steps.b.output }}"}}
                  - {name: b, executor: transform, config: {value: "{{ steps.a.output }}"}}
                """)
            #expect(cycle.status == .badRequest)
            let message = Self.json(cycle)?["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("cycle") && message.contains("a") && message.contains("b"))
            let reference = try await Self.call(client, .post, "/v1/flows", """
                name: refs
                steps:
                  - {name: a, executor: transform, config: {value: 1}}
                  - {name: b, executor: transform, config: {value: 2}}
                  - {name: c, executor: transform, condition: "{{ steps.check_type.output == 'pdf' }}", config: {value: 3}}
                """)
            #expect(Self.json(reference)?["error"]?["message"] == "steps[2].condition: unknown step 'check_type'")
            #expect(Self.json(reference)?["error"]?["param"] == "steps[2].condition")
            let unknown = try await Self.call(client, .post, "/v1/flows", "name: x\nsteps: [{name: a, executor: shell}]")
            #expect(Self.json(unknown)?["error"]?["message"]?.stringValue?.hasPrefix("steps[0].executor: unknown executor 'shell'") == true)
            #expect(try await Self.call(client, .post, "/v1/flows", "name: x\nsteps: [{name: a, executor: transform, config: {value: 1}}]", roles: ["viewer"]).status == .forbidden)
        }
    }

    @Test func versionsAreKeptTheNewestIsActiveAndAPinnedOneStillRuns() async throws {
        try await Harness().app().test(.router) { client in
            for version in [1, 2] {
                let made = try await Self.call(client, .post, "/v1/flows", """
                    name: greet
                    version: \(version)
                    inputs: {who: string}
                    steps: [{name: say, executor: transform, config: {value: "v\(version) hello {{ inputs.who }}"}}]
                    """)
                #expect(made.status == .created)
            }
            let changed = try await Self.call(client, .post, "/v1/flows", "name: greet\nversion: 1\nsteps: [{name: other, executor: transform, config: {value: 0}}]")
            #expect(changed.status == .conflict)
            let active = try await Self.call(client, .post, "/v1/flows/greet/runs", #"{"inputs":{"who":"Ada"}}"#)
            #expect(Self.json(active)?["output"] == "v2 hello Ada")
            let pinned = try await Self.call(client, .post, "/v1/flows/greet/runs", #"{"inputs":{"who":"Ada"},"version":"1"}"#)
            #expect(Self.json(pinned)?["output"] == "v1 hello Ada")
            let missing = try await Self.call(client, .post, "/v1/flows/greet/runs", #"{"inputs":{}}"#)
            #expect(missing.status == .badRequest)
            #expect(Self.json(missing)?["error"]?["message"] == "inputs.who: required")
            #expect(try await Self.call(client, .post, "/v1/flows/nope/runs", #"{"inputs":{}}"#).status == .notFound)
            // Another tenant sees only the shipped flows.
            let other = try await Self.call(client, .get, "/v1/flows", tenant: "other")
            #expect(!(Self.json(other)?["data"]?.arrayValue ?? []).contains { $0["name"] == "greet" })
        }
    }

    @Test func aStreamedRunSendsItsStepsAsEventsThenTheRecord() async throws {
        try await Harness().app().test(.router) { client in
            let response = try await Self.call(client, .post, "/v1/flows/summarize/runs", #"{"inputs":{"text":"Long text.","model":"tiny"},"stream":true}"#)
            #expect(response.headers[.contentType] == "text/event-stream")
            let body = String(buffer: response.body)
            let kinds = body.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") }
            #expect(kinds == ["event: step.started", "event: step.finished", "event: run.finished"])
            #expect(body.hasSuffix("data: [DONE]\n\n"))
            #expect(body.contains(#""status":"succeeded""#))
        }
    }

    @Test func anAsyncRunCanBeCancelled() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            _ = try await Self.call(client, .post, "/v1/flows", """
                name: slow
                steps:
                  - {name: wait, executor: chat, timeout: 60s, retry: {max_attempts: 10, delay: 5s}, config: {model: tiny, messages: [{role: user, content: fail}]}}
                """)
            let started = try await Self.call(client, .post, "/v1/flows/slow/runs", #"{"inputs":{},"async":true}"#)
            #expect(started.status == .accepted)
            let id = try #require(Self.json(started)?["id"]?.stringValue)
            #expect(Self.json(started)?["status"] == "running")
            let running = try await Self.call(client, .get, "/v1/flows/slow/runs/\(id)")
            #expect(Self.json(running)?["status"] == "running")
            let cancelled = try await Self.call(client, .post, "/v1/flows/slow/runs/\(id)/cancel")
            #expect(Self.json(cancelled)?["status"] == "cancelled", "\(String(buffer: cancelled.body))")
            let stored = try await Self.call(client, .get, "/v1/flows/slow/runs/\(id)")
            #expect(Self.json(stored)?["status"] == "cancelled")
        }
    }
}
