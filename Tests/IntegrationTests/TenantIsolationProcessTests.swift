import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Testing
import TestSupport

/// Two tenants and every role, through the gateway as deployed (gateway, orchestrator, embedder,
/// retriever and cost-service processes over the test stack): tenant B makes a document, a
/// session, a budget, usage, keys and audit entries; every key of tenant A then walks every
/// route with B's names and ids and gets 403 or 404 — never B's data — and B's things are all
/// still there afterwards. The roles' refusals are checked on the way.
@Suite(.timeLimit(.minutes(5)))
struct TenantIsolationProcessTests {
    struct Answer {
        var status: Int
        var body: String
        var headers: [(name: String, value: String)] = []
        var json: JSONValue? { JSONValue.parse(Array(body.utf8)) }

        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    final class Gateway: Sendable {
        let service: ServiceProcessTests.RunningService
        init(_ service: ServiceProcessTests.RunningService) { self.service = service }

        func call(_ method: String, _ path: String, key: String, _ body: String? = nil, headers: [(name: String, value: String)] = []) async throws -> Answer {
            var request = HTTPRequest(
                method: method, url: service.base + path, headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")] + headers,
                timeout: .seconds(30))
            if let body { request.body = Array(body.utf8) }
            let response = try await service.http.execute(request)
            return Answer(status: response.status, body: String(decoding: try await response.body.collect(upTo: 1 << 22), as: UTF8.self), headers: response.headers)
        }
    }

    static func upstream() throws -> TestHTTPServer {
        try TestHTTPServer { _, connection in
            let answer = #"{"id":"up","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Noted."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#
            connection.respond(headers: ["Content-Type": "application/json"], body: Array(answer.utf8))
        }
    }

    @Test func everyRouteWithAnotherTenantsIdsAnswers403Or404AndNeverItsData() async throws {
        let upstream = try Self.upstream()
        defer { upstream.stop() }
        let catalog = try ServiceProcessTests.catalog("isolation", upstream: upstream.baseURL)
        let offset = 160
        let url = { (service: String) in "http://127.0.0.1:\(ServiceProcessTests.port(of: service) + offset)" }
        let usageTopic = TestEnvironment.uniqueName("usage")
        let requests = TestEnvironment.uniqueName("conduit.test.requests")
        let chunks = TestEnvironment.uniqueName("conduit.test.chunks")
        let root = TestEnvironment.uniqueName("root")
        let rootKey = "cdt-test-\(UUID().uuidString)"
        let (embedder, retriever) = try ServiceProcessTests.indexingServices(portOffset: offset, requests: requests, chunks: chunks)
        let costService = try ServiceProcessTests.RunningService("cost-service", portOffset: offset, extraEnvironment: [
            "CONDUIT_COST_SERVICE_USAGE_TOPIC": usageTopic, "CONDUIT_COST_SERVICE_GROUP": TestEnvironment.uniqueName("cost"),
        ])
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: offset, extraEnvironment: [
            "CONDUIT_MODEL_CATALOG": catalog, "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": usageTopic, "CONDUIT_CACHE_ENABLED": "false",
            "CONDUIT_COST_SERVICE_URL": url("cost-service"), "CONDUIT_EMBEDDER_URL": embedder.base, "CONDUIT_RETRIEVER_URL": retriever.base,
        ])
        let gatewayService = try ServiceProcessTests.RunningService("gateway", portOffset: offset, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": rootKey, "CONDUIT_ADMIN_TENANT": root, "CONDUIT_GATEWAY_INDEXING_TOPIC": requests,
            "CONDUIT_ORCHESTRATOR_URL": orchestrator.base, "CONDUIT_COST_SERVICE_URL": costService.base,
            "CONDUIT_EMBEDDER_URL": embedder.base, "CONDUIT_RETRIEVER_URL": retriever.base,
        ])
        let all = [embedder, retriever, costService, orchestrator, gatewayService]
        defer { for service in all { service.process.signal(SIGKILL) } }
        for service in all { try await service.waitUntilReady() }
        let gateway = Gateway(gatewayService)

        // Two tenants, made by the platform admin; A gets a key of every role, B an admin and a developer.
        let a = TestEnvironment.uniqueName("tenant-a")
        let b = TestEnvironment.uniqueName("tenant-b")
        for tenant in [a, b] {
            #expect(try await gateway.call("POST", "/v1/tenants", key: rootKey, #"{"name":"\#(tenant)","id":"\#(tenant)"}"#).status == 201)
        }
        func key(_ tenant: String, _ role: String, by creator: String = rootKey) async throws -> (id: String, secret: String) {
            let made = try await gateway.call("POST", "/v1/keys", key: creator, #"{"tenant":"\#(tenant)","role":"\#(role)","name":"\#(role)"}"#)
            #expect(made.status == 201, "\(made.body)")
            return (made.json?["id"]?.stringValue ?? "", made.json?["key"]?.stringValue ?? "")
        }
        let bAdmin = try await key(b, "admin")
        let bDeveloper = try await key(b, "developer", by: bAdmin.secret)
        var aKeys: [(role: String, id: String, secret: String)] = []
        let aAdmin = try await key(a, "admin")
        aKeys.append(("admin", aAdmin.id, aAdmin.secret))
        for role in ["developer", "viewer", "service"] {
            let made = try await key(a, role, by: aAdmin.secret)
            aKeys.append((role, made.id, made.secret))
        }

        // Tenant B's things: a searchable document, a session, a budget, its usage and its audit trail.
        let secretText = "Project nightingale ships on the fourth of March."
        #expect(try await gateway.call("POST", "/v1/documents", key: bDeveloper.secret,
                                       #"{"collection":"plans","doc_id":"launch","text":"\#(secretText)"}"#).status == 202)
        let bSearch = #"{"collection":"plans","query":"nightingale","mode":"keyword","top_k":3}"#
        #expect(try await eventually(within: .seconds(90)) {
            try await gateway.call("POST", "/v1/search", key: bDeveloper.secret, bSearch).body.contains("nightingale")
        })
        let session = "b-session-\(UUID().uuidString.prefix(8))"
        let chat = try await gateway.call("POST", "/v1/chat/completions", key: bDeveloper.secret,
                                          #"{"model":"m","messages":[{"role":"user","content":"Remember nightingale."}]}"#,
                                          headers: [("X-Conduit-Session-Id", session)])
        #expect(chat.status == 200, "\(chat.body)")
        #expect(try await gateway.call("GET", "/v1/sessions/\(session)", key: bDeveloper.secret).status == 200)
        let budget = try await gateway.call("POST", "/v1/budgets", key: bAdmin.secret, #"{"scope":{"tenant":true},"period":"month","limit_usd":5,"name":"b-budget"}"#)
        #expect(budget.status == 201, "\(budget.body)")
        let budgetID = try #require(budget.json?["id"]?.stringValue)
        #expect(try await eventually(within: .seconds(30)) {
            try await gateway.call("GET", "/v1/usage?group_by=key", key: bAdmin.secret).body.contains(bDeveloper.id)
        })
        #expect(try await gateway.call("POST", "/v1/teams", key: bAdmin.secret, #"{"name":"nightingale-team"}"#).status == 201)
        #expect(try await gateway.call("POST", "/v1/users", key: bAdmin.secret, #"{"id":"nightingale-lead","team":"nightingale-team"}"#).status == 201)
        #expect(try await eventually(within: .seconds(30)) {
            try await gateway.call("GET", "/v1/audit", key: bAdmin.secret).json?["data"]?.arrayValue?.isEmpty == false
        })

        // The walk: every key of A, every route, B's names and ids.
        let walk: [(method: String, path: String, body: String?)] = [
            ("POST", "/v1/search", bSearch),
            ("GET", "/v1/sessions/\(session)", nil),
            ("DELETE", "/v1/sessions/\(session)", nil),
            ("DELETE", "/v1/documents/plans/launch", nil),
            ("GET", "/v1/budgets/\(budgetID)", nil),
            ("PATCH", "/v1/budgets/\(budgetID)", #"{"limit_usd":1000}"#),
            ("DELETE", "/v1/budgets/\(budgetID)", nil),
            ("GET", "/v1/keys/\(bDeveloper.id)", nil),
            ("PATCH", "/v1/keys/\(bDeveloper.id)", #"{"name":"taken"}"#),
            ("POST", "/v1/keys/\(bDeveloper.id)/rotate", nil),
            ("DELETE", "/v1/keys/\(bDeveloper.id)", nil),
            ("POST", "/v1/keys", #"{"tenant":"\#(b)","role":"admin"}"#),
            ("GET", "/v1/keys?tenant=\(b)", nil),
            ("GET", "/v1/tenants/\(b)", nil),
            ("PATCH", "/v1/tenants/\(b)", #"{"rpm_limit":1}"#),
            ("GET", "/v1/audit?tenant=\(b)", nil),
            ("GET", "/v1/teams/nightingale-team", nil), ("PATCH", "/v1/teams/nightingale-team", #"{"name":"x"}"#),
            ("DELETE", "/v1/users/nightingale-lead", nil), ("GET", "/v1/users?tenant=\(b)", nil),
            ("GET", "/v1/audit/verify?tenant=\(b)", nil),
        ]
        // What must never come back to A.
        let bData = [secretText, "nightingale", session, budgetID, bDeveloper.id, bAdmin.id, bDeveloper.secret, b]
        for (role, _, secret) in aKeys {
            for step in walk {
                let answer = try await gateway.call(step.method, step.path, key: secret, step.body)
                // A document delete is accepted for A's own (empty) collection: it must not touch B's.
                let allowed = step.path.hasPrefix("/v1/documents") ? [202, 403] : [403, 404]
                #expect(allowed.contains(answer.status), "\(role) \(step.method) \(step.path) → \(answer.status) \(answer.body.prefix(300))")
                let leaked = bData.filter { answer.body.contains($0) && !(step.body ?? "").contains($0) && !step.path.contains($0) }
                #expect(leaked.isEmpty, "\(role) \(step.method) \(step.path) leaked \(leaked)")
            }
            // Lists answer with A's own things only (or 403 for the role).
            for path in ["/v1/usage?group_by=key,model", "/v1/budgets", "/v1/keys", "/v1/teams", "/v1/users"] {
                let answer = try await gateway.call("GET", path, key: secret)
                #expect([200, 403].contains(answer.status), "\(role) GET \(path) → \(answer.status)")
                let leaked = bData.filter { answer.body.contains($0) }
                #expect(leaked.isEmpty, "\(role) GET \(path) leaked \(leaked)")
            }
            // A's trail records A's own refused attempts (naming B's ids in their paths); no row of B's.
            let trail = try await gateway.call("GET", "/v1/audit?limit=1000", key: secret)
            #expect([200, 403].contains(trail.status))
            let tenants = Set(trail.json?["data"]?.arrayValue?.compactMap { $0["tenant"]?.stringValue } ?? [])
            #expect(tenants.isSubset(of: [a]), "\(role) GET /v1/audit shows tenants \(tenants)")
            if trail.status == 200 { #expect(tenants == [a], "\(role): A's trail has A's refusals in it") }
            #expect(!trail.body.contains(secretText) && !trail.body.contains(bDeveloper.secret))
            #expect(try await gateway.call("DELETE", "/v1/cache", key: secret).status != 500)
        }

        // The roles: a viewer cannot write, a developer cannot manage keys, a service key cannot read usage.
        let viewer = aKeys.first { $0.role == "viewer" }!.secret
        let developer = aKeys.first { $0.role == "developer" }!.secret
        let service = aKeys.first { $0.role == "service" }!.secret
        for (method, path, body) in [
            ("POST", "/v1/documents", #"{"collection":"c","doc_id":"d","text":"x"}"#), ("DELETE", "/v1/cache", nil),
            ("POST", "/v1/budgets", #"{"scope":{"tenant":true},"period":"month","limit_usd":1}"#), ("POST", "/v1/keys", #"{"role":"viewer"}"#),
            ("POST", "/v1/chat/completions", #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
        ] as [(String, String, String?)] {
            #expect(try await gateway.call(method, path, key: viewer, body).status == 403, "viewer \(method) \(path)")
        }
        #expect(try await gateway.call("POST", "/v1/keys", key: developer, #"{"role":"viewer"}"#).status == 403)
        #expect(try await gateway.call("GET", "/v1/keys", key: developer).status == 403)
        #expect(try await gateway.call("GET", "/v1/usage", key: service).status == 403)
        #expect(try await gateway.call("GET", "/v1/audit", key: service).status == 403)
        #expect(try await gateway.call("POST", "/v1/chat/completions", key: service,
                                       #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).status == 200)

        // B's things are all still there, unchanged.
        try await Task.sleep(for: .seconds(2))  // a delete published for A would have reached the retriever
        #expect(try await gateway.call("POST", "/v1/search", key: bDeveloper.secret, bSearch).body.contains("nightingale"))
        #expect(try await gateway.call("GET", "/v1/sessions/\(session)", key: bDeveloper.secret).status == 200)
        let kept = try await gateway.call("GET", "/v1/budgets/\(budgetID)", key: bAdmin.secret)
        #expect(kept.status == 200 && kept.json?["limit_usd"] == 5)
        let bKey = try await gateway.call("GET", "/v1/keys/\(bDeveloper.id)", key: bAdmin.secret)
        #expect(bKey.json?["name"] == "developer" && bKey.json?["revoked_at"] == .null)
        #expect(try await gateway.call("GET", "/v1/models", key: bDeveloper.secret).status == 200)
        #expect(try await gateway.call("GET", "/v1/users/nightingale-lead", key: bAdmin.secret).json?["team"] == "nightingale-team")
        #expect(try await gateway.call("GET", "/v1/audit/verify", key: bAdmin.secret).json?["valid"] == true)
    }
}
