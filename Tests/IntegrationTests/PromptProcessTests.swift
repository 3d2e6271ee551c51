import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Testing
import TestSupport

/// The prompt registry as deployed: prompt-registry, two orchestrators and a gateway over the
/// test stack, and a local OpenAI-compatible upstream that records what it was sent.
@Suite(.timeLimit(.minutes(5)))
struct PromptProcessTests {
    typealias Answer = TenantIsolationProcessTests.Answer

    /// Answers every chat with "Done." and records each request's body.
    static func upstream(_ seen: Locked<[JSONValue]>) throws -> TestHTTPServer {
        try TestHTTPServer { request, connection in
            if let body = JSONValue.parse(request.body) { seen.withLock { $0.append(body) } }
            let answer = #"{"id":"up","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#
            connection.respond(headers: ["Content-Type": "application/json"], body: Array(answer.utf8))
        }
    }

    @Test func versionsLabelsRenderingTenantsAndExperimentsEndToEnd() async throws {
        let seen = Locked<[JSONValue]>([])
        let upstream = try Self.upstream(seen)
        defer { upstream.stop() }
        let catalog = try ServiceProcessTests.catalog("prompts", upstream: upstream.baseURL)
        let offset = 220
        let usageTopic = TestEnvironment.uniqueName("usage")
        let root = TestEnvironment.uniqueName("root")
        let rootKey = "cdt-test-\(UUID().uuidString)"
        let registryService = try ServiceProcessTests.RunningService("prompt-registry", portOffset: offset, extraEnvironment: [
            "CONDUIT_PROMPT_REGISTRY_USAGE_TOPIC": usageTopic, "CONDUIT_PROMPT_REGISTRY_GROUP": TestEnvironment.uniqueName("prompts"),
        ])
        func orchestrator(_ offset: Int) throws -> ServiceProcessTests.RunningService {
            try ServiceProcessTests.RunningService("orchestrator", portOffset: offset, extraEnvironment: [
                "CONDUIT_MODEL_CATALOG": catalog, "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": usageTopic, "CONDUIT_CACHE_ENABLED": "false",
                "CONDUIT_PROMPT_REGISTRY_URL": registryService.base,
            ])
        }
        let first = try orchestrator(offset)
        var second = try orchestrator(offset + 1)
        let gatewayService = try ServiceProcessTests.RunningService("gateway", portOffset: offset, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": rootKey, "CONDUIT_ADMIN_TENANT": root,
            "CONDUIT_ORCHESTRATOR_URL": first.base, "CONDUIT_PROMPT_REGISTRY_URL": registryService.base,
        ])
        var all = [registryService, first, second, gatewayService]
        defer { for service in all { service.process.signal(SIGKILL) } }
        for service in all { try await service.waitUntilReady() }
        let gateway = TenantIsolationProcessTests.Gateway(gatewayService)
        let tenant = TestEnvironment.uniqueName("tenant")
        let other = TestEnvironment.uniqueName("other")
        for name in [tenant, other] {
            #expect(try await gateway.call("POST", "/v1/tenants", key: rootKey, #"{"name":"\#(name)","id":"\#(name)"}"#).status == 201)
        }
        func key(_ tenant: String, _ role: String) async throws -> String {
            let made = try await gateway.call("POST", "/v1/keys", key: rootKey, #"{"tenant":"\#(tenant)","role":"\#(role)","name":"\#(role)"}"#)
            #expect(made.status == 201, "\(made.body)")
            return made.json?["key"]?.stringValue ?? ""
        }
        let admin = try await key(tenant, "admin")
        let developer = try await key(tenant, "developer")
        let viewer = try await key(tenant, "viewer")
        let stranger = try await key(other, "admin")

        // A chat prompt, version 1, in production; a second version on staging.
        let name = "support/answer"
        let v1 = try await gateway.call("POST", "/v1/prompts", key: developer, #"""
            {"name":"\#(name)","type":"chat","messages":[{"role":"system","content":"You help <{{customer}}> with {{product}}. {{> shared/tone}}"},
             {"type":"placeholder","name":"history"},{"role":"user","content":"{{question}}"}],
             "config":{"temperature":0.2,"max_tokens":64},"labels":["production"],"commit_message":"first"}
            """#)
        #expect(v1.status == 400 && v1.json?["error"]?["code"] == "unknown_partial", "\(v1.body)")
        #expect(try await gateway.call("POST", "/v1/prompts", key: developer, #"{"name":"shared/tone","template":"Be {{tone}}."}"#).status == 201)
        #expect(try await gateway.call("POST", "/v1/prompts/shared/tone/labels", key: developer, #"{"label":"production","version":1}"#).status == 200)
        let created = try await gateway.call("POST", "/v1/prompts", key: developer, #"""
            {"name":"\#(name)","type":"chat","messages":[{"role":"system","content":"You help <{{customer}}> with {{product}}. {{> shared/tone}}"},
             {"type":"placeholder","name":"history"},{"role":"user","content":"{{question}}"}],
             "config":{"temperature":0.2,"max_tokens":64},"labels":["production"],"commit_message":"first"}
            """#)
        #expect(created.status == 201, "\(created.body)")
        #expect(created.json?["version"] == 1 && created.json?["labels"] == ["latest", "production"])
        let second2 = try await gateway.call("POST", "/v1/prompts", key: developer, #"""
            {"name":"\#(name)","type":"chat","messages":[{"role":"system","content":"Version two for {{product}}."},{"role":"user","content":"{{question}}"}],
             "config":{"temperature":0.9},"labels":["staging"]}
            """#)
        #expect(second2.json?["version"] == 2, "\(second2.body)")
        #expect(try await gateway.call("POST", "/v1/prompts", key: viewer, #"{"name":"x","template":"y"}"#).status == 403)
        #expect(try await gateway.call("POST", "/v1/prompts", key: developer, #"{"name":"\#(name)","template":"text now"}"#).json?["error"]?["code"] == "prompt_type_mismatch")
        // Numbers and text Postgres cannot keep are refused before they reach it.
        #expect(try await gateway.call("GET", "/v1/prompts/\(name)?version=99999999999", key: viewer).status == 400)
        #expect(try await gateway.call("POST", "/v1/prompts/\(name)/labels", key: developer, #"{"label":"qa","version":99999999999}"#).status == 400)
        #expect(try await gateway.call("POST", "/v1/prompts", key: developer, #"{"name":"nul","template":"a\u0000b"}"#).json?["error"]?["param"] == "template")

        // Versions are immutable: the database itself refuses to change one.
        let postgres = PostgresClient(configuration: .init(port: TestEnvironment.postgresPort), logger: .init(label: "check"))
        defer { postgres.shutdown() }
        await #expect(throws: (any Error).self) {
            try await postgres.query("UPDATE prompts.versions SET template = 'changed' WHERE tenant_id = $1", tenant)
        }
        let original = try await gateway.call("GET", "/v1/prompts/\(name)?version=1", key: viewer)
        // The folder may come escaped, as OpenAPI clients send a {name}.
        #expect(try await gateway.call("GET", "/v1/prompts/support%2Fanswer?version=1", key: viewer).json?["messages"] == original.json?["messages"])
        #expect(original.json?["messages"]?[0]?["content"] == "You help <{{customer}}> with {{product}}. {{> shared/tone}}")

        // The chat path renders production into the request; values are not escaped; the
        // config fills what the request leaves unset; the answer and the usage event name the version.
        let variables = #"{"customer":"Ann & Bo","product":"Conduit","tone":"kind","question":"How do I start?","history":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}"#
        let chat = #"{"model":"m","max_tokens":32,"user":"u-1","messages":[{"role":"user","content":"and then?"}],"conduit":{"prompt":{"name":"\#(name)","variables":\#(variables)}}}"#
        let firstID = UUID().uuidString.lowercased()
        let answered = try await gateway.call("POST", "/v1/chat/completions", key: developer, chat, headers: [("X-Request-Id", firstID)])
        #expect(answered.status == 200, "\(answered.body)")
        #expect(answered.json?["conduit"]?["prompt"] == ["name": .string(name), "version": 1, "label": "production"])
        let sent = try #require(seen.withLock { $0.last })
        #expect(sent["messages"]?.arrayValue?.map { $0["content"]?.stringValue ?? "" } == [
            "You help <Ann & Bo> with Conduit. Be kind.", "hi", "hello", "How do I start?", "and then?",
        ])
        #expect(sent["temperature"] == 0.2 && sent["max_tokens"] == 32)
        #expect(answered.header("X-Conduit-Prompt-Unused-Variables") == nil)
        let extra = try await gateway.call("POST", "/v1/chat/completions", key: developer,
                                           chat.replacingOccurrences(of: #""customer":"Ann & Bo""#, with: #""customer":"Ann","zeta":1,"alpha":2"#))
        #expect(extra.status == 200 && extra.header("X-Conduit-Prompt-Unused-Variables") == "alpha,zeta", "\(extra.headers)")
        // The usage event names the prompt and its version.
        let event = try #require(try await TestEnvironment.firstMessage(usageTopic) { message in
            (try? EventCoding.decoder().decode(UsageEvent.self, from: Data(message.value)))?.requestID == firstID
        })
        let usage = try EventCoding.decoder().decode(UsageEvent.self, from: Data(event.value))
        #expect(usage.promptName == name && usage.promptVersion == 1 && usage.experimentID == nil && usage.status == "ok")

        // A missing variable is a 400 naming it, before anything goes upstream.
        let calls = seen.withLock { $0.count }
        let missing = try await gateway.call("POST", "/v1/chat/completions", key: developer,
                                             #"{"model":"m","messages":[{"role":"user","content":"q"}],"conduit":{"prompt":{"name":"\#(name)","variables":{"product":"x","tone":"y","history":[],"question":"q"}}}}"#)
        #expect(missing.status == 400 && missing.json?["error"]?["param"] == "conduit.prompt.variables.customer", "\(missing.body)")
        #expect(missing.json?["error"]?["message"]?.stringValue?.contains("'customer'") == true)
        let rendered = try await gateway.call("POST", "/v1/prompts/\(name)/render", key: viewer, #"{"variables":{"product":"x"}}"#)
        #expect(rendered.status == 400 && rendered.json?["error"]?["code"] == "missing_variable")
        #expect(seen.withLock { $0.count } == calls)

        // A label move is seen by the other orchestrator within a second (its copy was warm).
        func servedVersion(_ orchestrator: ServiceProcessTests.RunningService, user: String = "u-1") async throws -> JSONValue? {
            let answer = try await orchestrator.post("/v1/chat/completions", chat.replacingOccurrences(of: "\"u-1\"", with: "\"\(user)\""),
                                                     headers: TestIdentity.headers(tenant: tenant, roles: ["developer"]))
            return JSONValue.parse(Array(answer.body.utf8))?["conduit"]?["prompt"]
        }
        #expect(try await servedVersion(second)?["version"] == 1)
        let moved = try await gateway.call("POST", "/v1/prompts/\(name)/labels", key: developer, #"{"label":"production","version":2}"#)
        let movedAt = ContinuousClock.now
        #expect(moved.status == 200, "\(moved.body)")
        /// How long after the move the first request that saw version 2 was sent (a slow answer
        /// on a loaded machine does not count against the poll); nil if none sent within 3 s did.
        func firstSeen(_ ask: () async throws -> JSONValue?) async throws -> Duration? {
            while ContinuousClock.now - movedAt < .seconds(3) {
                let sent = ContinuousClock.now
                if try await ask() == 2 { return sent - movedAt }
                try await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        let bySecond = try #require(try await firstSeen { try await servedVersion(second)?["version"] })
        // And by the first, behind the gateway.
        let byFirst = try #require(try await firstSeen {
            try await gateway.call("POST", "/v1/chat/completions", key: developer, chat).json?["conduit"]?["prompt"]?["version"]
        })
        #expect(bySecond < .seconds(1) && byFirst < .seconds(1), "seen after \(bySecond) and \(byFirst)")
        print("prompt-label-move: seen_by_second_orchestrator_ms=\(bySecond / .milliseconds(1)) seen_through_gateway_ms=\(byFirst / .milliseconds(1))")

        // Rollback restores the exact text and config; protected labels move only for admins.
        #expect(try await gateway.call("POST", "/v1/prompts/\(name)/labels", key: admin, #"{"label":"production","version":1,"protected":true}"#).status == 200)
        let restored = try await gateway.call("GET", "/v1/prompts/\(name)?label=production", key: viewer)
        #expect(restored.json?["messages"] == original.json?["messages"] && restored.json?["config"] == original.json?["config"])
        #expect(restored.json?["config"] == ["temperature": 0.2, "max_tokens": 64])
        let refused = try await gateway.call("POST", "/v1/prompts/\(name)/labels", key: developer, #"{"label":"production","version":2}"#)
        #expect(refused.status == 403 && refused.json?["error"]?["code"] == "protected_label")
        let history = try await gateway.call("GET", "/v1/prompts/\(name)/history", key: viewer)
        #expect(history.json?["data"]?.arrayValue?.filter { $0["label"] == "production" }.map { $0["to_version"] ?? .null } == [1, 2, 1])
        let diff = try await gateway.call("GET", "/v1/prompts/\(name)/diff?from=1&to=2", key: viewer)
        #expect(diff.json?["config"]?["temperature"] == ["from": 0.2, "to": 0.9] && diff.json?["identical"] == false)

        // Partials that include each other are refused when the version is made.
        #expect(try await gateway.call("POST", "/v1/prompts", key: developer, #"{"name":"loop/a","template":"A","labels":["production"]}"#).status == 201)
        #expect(try await gateway.call("POST", "/v1/prompts", key: developer, #"{"name":"loop/b","template":"B {{> loop/a}}","labels":["production"]}"#).status == 201)
        let cycle = try await gateway.call("POST", "/v1/prompts", key: developer, #"{"name":"loop/a","template":"A {{> loop/b}}","labels":["production"]}"#)
        #expect(cycle.status == 400 && cycle.json?["error"]?["code"] == "partial_cycle", "\(cycle.body)")

        // Another tenant's prompt does not exist for it, by the API or the chat path.
        #expect(try await gateway.call("GET", "/v1/prompts/\(name)", key: stranger).status == 404)
        #expect(try await gateway.call("POST", "/v1/prompts/\(name)/render", key: stranger, #"{"variables":{}}"#).status == 404)
        let foreign = try await gateway.call("POST", "/v1/chat/completions", key: stranger, chat)
        #expect(foreign.status == 404 && foreign.json?["error"]?["code"] == "prompt_not_found", "\(foreign.body)")
        #expect(try await gateway.call("GET", "/v1/prompts", key: stranger).json?["data"] == [])

        // An experiment: half on production (v1), half on version 2, sticky per user, the same on
        // both orchestrators and after a restart.
        let experiment = try await gateway.call("POST", "/v1/experiments", key: developer, #"""
            {"prompt":"\#(name)","variants":[{"name":"control","label":"production","weight":1},{"name":"candidate","version":2,"weight":1}]}
            """#)
        #expect(experiment.status == 201, "\(experiment.body)")
        let experimentID = try #require(experiment.json?["id"]?.stringValue)
        try await Task.sleep(for: .milliseconds(600))
        var assigned: [String: JSONValue] = [:]
        for user in 0..<12 {
            let served = try await servedVersion(first, user: "user-\(user)")
            #expect(served?["experiment_id"] == .string(experimentID))
            #expect((served?["variant"] == "control" && served?["version"] == 1) || (served?["variant"] == "candidate" && served?["version"] == 2), "\(String(describing: served))")
            assigned["user-\(user)"] = served?["variant"]
            #expect(try await servedVersion(second, user: "user-\(user)")?["variant"] == served?["variant"])
        }
        #expect(Set(assigned.values).count == 2, "12 users all got one variant: \(assigned)")
        second.process.signal(SIGTERM)
        _ = await second.process.wait()
        second = try orchestrator(offset + 1)
        all.append(second)
        try await second.waitUntilReady()
        for (user, variant) in assigned { #expect(try await servedVersion(second, user: user)?["variant"] == variant) }

        // Feedback joins the usage events' outcomes; the experiment's page counts them.
        let thumbsID = UUID().uuidString.lowercased()
        let thumbs = try await gateway.call("POST", "/v1/chat/completions", key: developer, chat.replacingOccurrences(of: "\"u-1\"", with: "\"user-0\""),
                                            headers: [("X-Request-Id", thumbsID)])
        #expect(thumbs.json?["conduit"]?["prompt"]?["variant"] == assigned["user-0"])
        let feedback = try await gateway.call("POST", "/v1/feedback", key: developer, #"{"request_id":"\#(thumbsID)","thumbs":"up","score":4}"#)
        #expect(feedback.status == 201, "\(feedback.body)")
        #expect(try await gateway.call("POST", "/v1/feedback", key: developer, #"{"request_id":"\#(thumbsID)","thumbs":"sideways"}"#).status == 400)
        var page: JSONValue?
        #expect(try await eventually(within: .seconds(30)) {
            page = try await gateway.call("GET", "/v1/experiments/\(experimentID)", key: viewer).json
            let requests = page?["variants"]?.arrayValue?.compactMap { $0["requests"]?.intValue }.reduce(0, +) ?? 0
            let rated = page?["variants"]?.arrayValue?.compactMap { $0["metrics"]?["thumbs"]?["count"]?.intValue }.reduce(0, +) ?? 0
            return requests >= 25 && rated == 1
        }, "\(String(describing: page))")
        #expect(page?["recommendation"]?.stringValue?.contains("keep collecting") == true)
        let concluded = try await gateway.call("POST", "/v1/experiments/\(experimentID)/conclude", key: admin, #"{"winner":"candidate","move_label":true}"#)
        #expect(concluded.json?["status"] == "concluded" && concluded.json?["winner"] == "candidate", "\(concluded.body)")
        #expect(try await gateway.call("GET", "/v1/prompts/\(name)", key: viewer).json?["version"] == 2)
    }
}
