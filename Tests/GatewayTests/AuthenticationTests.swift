import Prometheus
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

/// API-key authentication and forwarding through the gateway's router, over in-process fakes.
@Suite(.timeLimit(.minutes(1)))
struct AuthenticationTests {
    static func post(_ client: some TestClientProtocol, _ uri: String, key: String?, body: String = #"{"collection":"c","query":"x"}"#,
                     headers extra: HTTPFields = [:]) async throws -> (status: HTTPResponse.Status, response: TestResponse, error: JSONValue?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        for field in extra { headers.append(field) }
        let response = try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body))
        return (response.status, response, JSONValue.parse(Array(response.body.readableBytesView))?["error"])
    }

    @Test func keysAreRequiredCheckedAndNeverEchoed() async throws {
        let harness = GatewayHarness()
        #expect(harness.key.hasPrefix("cdt-") && harness.key.count == 47)
        try await harness.app().test(.router) { client in
            let missing = try await Self.post(client, "/v1/search", key: nil)
            #expect(missing.status == .unauthorized)
            #expect(missing.error?["type"] == "authentication_error")
            #expect(missing.error?["code"] == "invalid_api_key")

            let wrongKey = "cdt-wrong-\(UUID().uuidString)"
            let wrong = try await Self.post(client, "/v1/search", key: wrongKey)
            #expect(wrong.status == .unauthorized)
            #expect(wrong.error?["message"]?.stringValue?.contains(wrongKey) == false)

            // The right key gets through to forwarding (here to a retriever that is not there).
            let right = try await Self.post(client, "/v1/search", key: harness.key)
            #expect(right.status == .badGateway)
            #expect(right.error?["type"] == "upstream_error")

            // Health and metrics need no key.
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
        // The store only ever saw the key's hash.
        #expect(harness.keys.hashes == [APIKeyAuthenticator.hash(harness.key)])
        #expect(harness.services.received.map(\.path) == ["/v1/search"])
    }

    @Test func aKeyIsLookedUpOnceWhileItsCacheEntryLasts() async throws {
        let harness = GatewayHarness()
        try await harness.app().test(.router) { client in
            for _ in 0..<5 {
                let status = try await Self.post(client, "/v1/chat/completions", key: harness.key, body: "{}").status
                #expect(status == .ok)
            }
            for _ in 0..<3 {
                let status = try await Self.post(client, "/v1/chat/completions", key: "cdt-unknown", body: "{}").status
                #expect(status == .unauthorized)
            }
        }
        #expect(harness.keys.lookupCount == 2)
    }

    /// Authentication belongs to the route group: however the path is spelled, a route that
    /// resolves needs a key.
    @Test func doubledSlashesDoNotSkipAuthentication() async throws {
        let harness = GatewayHarness()
        try await harness.app().test(.router) { client in
            for path in ["//v1/models", "/v1//models", "//v1//search", "/v1/models/"] {
                let response = try await client.execute(uri: path, method: path.contains("search") ? .post : .get)
                #expect(response.status == .unauthorized, "\(path) answered \(response.status)")
            }
        }
        #expect(harness.services.received.isEmpty)
    }

    /// What reaches an internal service is the key's tenant, signed, with the caller's session
    /// headers; a caller's own identity headers are dropped; only the documented response
    /// headers come back, and event streams are relayed as they are.
    @Test func forwardingSignsTheKeysIdentityAndPassesOnlyWhatItShould() async throws {
        let harness = GatewayHarness()
        let forged = TestIdentity.headers(tenant: "someone-else", requestID: "req-forged")
        try await harness.app().test(.router) { client in
            var headers: HTTPFields = [HTTPField.Name("X-Conduit-Tenant")!: "someone-else", HTTPField.Name("X-Conduit-Session-Id")!: "s1"]
            headers[HTTPField.Name("X-Conduit-Identity")!] = forged[1].value
            let json = try await Self.post(client, "/v1/chat/completions", key: harness.key, body: #"{"model":"tiny"}"#, headers: headers)
            #expect(json.status == .ok)
            #expect(String(buffer: json.response.body) == #"{"object":"list","data":[]}"#)
            #expect(json.response.headers[HTTPField.Name("X-Conduit-Session-Id")!] == "s1")

            let stream = try await Self.post(client, "/v1/chat/completions", key: harness.key, body: #"{"model":"tiny","stream":true}"#)
            #expect(stream.response.headers[.contentType] == "text/event-stream")
            #expect(stream.response.headers[HTTPField.Name("X-Conduit-Deployment")!] == "tiny-local")
            #expect(stream.response.headers[HTTPField.Name("X-Internal-Secret")!] == nil)
            #expect(String(buffer: stream.response.body).hasSuffix("data: [DONE]\n\n"))

            let model = try await client.execute(uri: "/v1/models/a%2Fb", method: .get, headers: [.authorization: "Bearer \(harness.key)"])
            #expect(model.status == .ok)
        }
        let calls = harness.services.received
        #expect(calls.map(\.service) == [.orchestrator, .orchestrator, .orchestrator])
        #expect(calls.last?.path == "/v1/models/a%2Fb" && calls.last?.method == "GET" && calls.last?.body == nil)
        let first = try #require(calls.first)
        #expect(first.headers["x-conduit-tenant"] == nil)
        #expect(first.headers["x-conduit-session-id"] == "s1")
        let token = try #require(first.headers["x-conduit-identity"])
        #expect(token != forged[1].value)
        let identity = try TestIdentity.keyring.verify(token, requestID: try #require(first.headers["x-request-id"]))
        #expect(identity.tenant == harness.tenant)
        #expect(identity.keyID == "admin-" + harness.tenant)
    }

    @Test func usageGoesToTheCostServiceWithItsQuery() async throws {
        let harness = GatewayHarness()
        try await harness.app().test(.router) { client in
            let response = try await client.execute(uri: "/v1/usage?from=2026-01-01&group_by=model,day", method: .get,
                                                    headers: [.authorization: "Bearer \(harness.key)", .accept: "text/csv"])
            #expect(response.status == .ok)
        }
        let call = try #require(harness.services.received.first)
        #expect(call.service == .costService && call.method == "GET")
        #expect(call.path == "/v1/usage?from=2026-01-01&group_by=model,day")
        #expect(call.headers["accept"] == "text/csv")
        #expect(call.headers["x-conduit-identity"] != nil)
    }

    @Test func budgetsGoToTheCostServiceWithTheirBodies() async throws {
        let harness = GatewayHarness()
        try await harness.app().test(.router) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(harness.key)", .contentType: "application/json"]
            let body = #"{"scope":{"tenant":true},"period":"month","limit_usd":5}"#
            for (method, uri) in [(HTTPRequest.Method.post, "/v1/budgets"), (.get, "/v1/budgets"), (.get, "/v1/budgets/bud_1"),
                                  (.patch, "/v1/budgets/bud_1"), (.delete, "/v1/budgets/a%2Fb")] {
                let response = try await client.execute(uri: uri, method: method, headers: auth,
                                                        body: [.post, .patch].contains(method) ? ByteBuffer(string: body) : nil)
                #expect(response.status == .ok)
            }
            let anonymous = try await client.execute(uri: "/v1/budgets", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
        let calls = harness.services.received
        #expect(calls.map(\.service) == Array(repeating: .costService, count: 5))
        #expect(calls.map(\.method) == ["POST", "GET", "GET", "PATCH", "DELETE"])
        #expect(calls.map(\.path) == ["/v1/budgets", "/v1/budgets", "/v1/budgets/bud_1", "/v1/budgets/bud_1", "/v1/budgets/a%2Fb"])
        #expect(calls[0].body.map { String(decoding: $0, as: UTF8.self) } == #"{"scope":{"tenant":true},"period":"month","limit_usd":5}"#)
        #expect(calls[3].body != nil && calls[2].body == nil)
    }
}

/// The benchmark's anchor: with `CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1` on loopback the routes
/// need no key (and say so in a metric); on any other address the gateway does not start.
@Suite(.timeLimit(.minutes(1)))
struct UngovernedTests {
    @Test func onlyOnLoopbackAndNeverQuietly() async throws {
        let harness = GatewayHarness(environment: ["CONDUIT_GATEWAY_UNSAFE_UNGOVERNED": "1"])
        try await harness.app().test(.router) { client in
            let status = try await client.execute(uri: "/v1/models", method: .get).status
            #expect(status == .ok)
        }
        #expect(harness.services.received.first?.headers["x-conduit-identity"] != nil)
        var buffer: [UInt8] = []
        harness.registry.emit(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self).contains("gateway_ungoverned 1"))

        let exposed = GatewayHarness(environment: ["CONDUIT_GATEWAY_UNSAFE_UNGOVERNED": "1", "CONDUIT_GATEWAY_HOST": "0.0.0.0"])
        var refused = false
        do { _ = try await exposed.app() } catch is ConfigurationError { refused = true }
        #expect(refused)
        // Without the switch, a key is needed as always.
        try await GatewayHarness().app().test(.router) { client in
            let status = try await client.execute(uri: "/v1/models", method: .get).status
            #expect(status == .unauthorized)
        }
    }
}
