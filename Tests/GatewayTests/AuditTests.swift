import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TestSupport

/// What the gateway audits: admin changes (allowed, or refused), permission refusals and
/// authentication failures; reads and inference are not audited.
@Suite(.timeLimit(.minutes(1)))
struct AuditTests {
    @Test func adminChangesRefusalsAndFailedKeysAreAuditedAndNothingElse() async throws {
        let harness = GatewayHarness()
        let viewer = APIKeyAuthenticator.generateKey()
        harness.keys.install(hash: APIKeyAuthenticator.hash(viewer), identity: CallerIdentity(tenant: "acme", keyID: "key-viewer", roles: ["viewer"]))
        try await harness.app().test(.router) { client in
            let budget = #"{"scope":{"tenant":true},"period":"day","limit_usd":5}"#
            let status1 = try await Self.call(client, .post, "/v1/budgets", key: harness.key, budget, id: "r-create")
            #expect(status1 == .ok)
            let status2 = try await Self.call(client, .post, "/v1/budgets", key: viewer, budget, id: "r-viewer")
            #expect(status2 == .forbidden)
            let status3 = try await Self.call(client, .post, "/v1/documents", key: viewer, #"{"collection":"c","doc_id":"d","text":"x"}"#, id: "r-doc")
            #expect(status3 == .forbidden)
            let status4 = try await Self.call(client, .post, "/v1/search", key: "cdt-made-up", #"{"collection":"c","query":"x"}"#, id: "r-bad-key")
            #expect(status4 == .unauthorized)
            let status5 = try await Self.call(client, .get, "/v1/budgets", key: harness.key, nil, id: "r-read")
            #expect(status5 == .ok)
            let status6 = try await Self.call(client, .post, "/v1/chat/completions", key: harness.key, #"{"model":"m","messages":[]}"#, id: "r-chat")
            #expect(status6 == .ok)
        }
        let events = Dictionary(uniqueKeysWithValues: harness.audit.recorded.map { ($0.requestID, $0) })
        #expect(Set(events.keys) == ["r-create", "r-viewer", "r-doc", "r-bad-key"])
        #expect(events["r-create"]?.action == "budget.create" && events["r-create"]?.outcome == "allowed" && events["r-create"]?.tenant == "acme")
        #expect(events["r-create"]?.keyID == "admin-acme" && events["r-create"]?.resource == "POST /v1/budgets")
        #expect(events["r-viewer"]?.action == "budget.create" && events["r-viewer"]?.outcome == "denied" && events["r-viewer"]?.status == 403)
        #expect(events["r-doc"]?.action == "permission.denied" && events["r-doc"]?.keyID == "key-viewer")
        #expect(events["r-bad-key"]?.action == "auth.failed" && events["r-bad-key"]?.tenant == nil && events["r-bad-key"]?.status == 401)
        // The key is never in the trail.
        #expect(!harness.audit.recorded.contains { "\($0)".contains("cdt-made-up") })
    }

    static func call(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?, _ body: String?, id: String) async throws
        -> HTTPResponse.Status {
        var headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("X-Request-Id")!: id]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }).status
    }

    @Test func actionsAreNamedByRouteAndMethod() {
        #expect(AuditMiddleware.action(.post, path: "/v1/keys") == "key.create")
        #expect(AuditMiddleware.action(.patch, path: "/v1/keys/key_1") == "key.update")
        #expect(AuditMiddleware.action(.delete, path: "/v1/keys/key_1") == "key.revoke")
        #expect(AuditMiddleware.action(.post, path: "/v1/keys/key_1/rotate") == "key.rotate")
        #expect(AuditMiddleware.action(.post, path: "/v1/tenants") == "tenant.create")
        #expect(AuditMiddleware.action(.delete, path: "/v1/budgets/b") == "budget.delete")
        #expect(AuditMiddleware.action(.get, path: "/v1/keys") == nil)
        #expect(AuditMiddleware.action(.post, path: "/v1/chat/completions") == nil)
        // Every change to prompts, names with folders included; reading and rendering are not changes.
        #expect(AuditMiddleware.action(.post, path: "/v1/prompts") == "prompt.version")
        #expect(AuditMiddleware.action(.post, path: "/v1/prompts/support/answer/labels") == "prompt.label")
        #expect(AuditMiddleware.action(.delete, path: "/v1/prompts/support/answer") == "prompt.delete")
        #expect(AuditMiddleware.action(.post, path: "/v1/prompts/support/answer/render") == nil)
        #expect(AuditMiddleware.action(.post, path: "/v1/experiments") == "experiment.create")
        #expect(AuditMiddleware.action(.post, path: "/v1/experiments/exp_1/conclude") == "experiment.conclude")
    }
}
