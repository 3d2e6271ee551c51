import ConduitKit
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TestSupport

/// API-key authentication through the gateway's router, against the test stack's Postgres.
@Suite(.timeLimit(.minutes(2)))
struct AuthenticationTests {
    static func app(adminKey: String, tenant: String) async throws -> some ApplicationProtocol {
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_ADMIN_KEY"] = adminKey
        values["CONDUIT_ADMIN_TENANT"] = tenant
        // Nothing listens there: a forwarded request proves it got past authentication.
        values["CONDUIT_RETRIEVER_URL"] = "http://127.0.0.1:9"
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(values))
        return try await buildApplication(configuration: configuration, logger: Logger(label: "gateway-test"))
    }

    static func post(_ client: some TestClientProtocol, _ uri: String, key: String?) async throws -> (status: HTTPResponse.Status, error: [String: Any]) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        let response = try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: #"{"collection":"c","query":"x"}"#))
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
        return (response.status, json?["error"] as? [String: Any] ?? [:])
    }

    @Test func keysAreRequiredCheckedAndNeverEchoed() async throws {
        let key = APIKeyAuthenticator.generateKey()
        #expect(key.hasPrefix("cdt-") && key.count == 47)
        try await Self.app(adminKey: key, tenant: TestEnvironment.uniqueName("tenant")).test(.router) { client in
            let missing = try await Self.post(client, "/v1/search", key: nil)
            #expect(missing.status == .unauthorized)
            #expect(missing.error["type"] as? String == "authentication_error")
            #expect(missing.error["code"] as? String == "invalid_api_key")

            let wrongKey = "cdt-wrong-\(UUID().uuidString)"
            let wrong = try await Self.post(client, "/v1/search", key: wrongKey)
            #expect(wrong.status == .unauthorized)
            #expect(!(wrong.error["message"] as? String ?? "").contains(wrongKey))

            // The right key gets through to forwarding (here to a retriever that is not there).
            let right = try await Self.post(client, "/v1/search", key: key)
            #expect(right.status == .badGateway)
            #expect(right.error["type"] as? String == "upstream_error")

            // Health and metrics need no key.
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test func keysAreStoredHashedAndAnotherKeyReplacesTheAdminKey() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let first = APIKeyAuthenticator.generateKey()
        try await Self.app(adminKey: first, tenant: tenant).test(.router) { client in
            let accepted = try await Self.post(client, "/v1/search", key: first)
            #expect(accepted.status == .badGateway)
        }
        let second = APIKeyAuthenticator.generateKey()
        try await Self.app(adminKey: second, tenant: tenant).test(.router) { client in
            let current = try await Self.post(client, "/v1/search", key: second)
            let replaced = try await Self.post(client, "/v1/search", key: first)
            #expect(current.status == .badGateway)
            #expect(replaced.status == .unauthorized)
        }
        #expect(APIKeyAuthenticator.hash(first).count == 32)
        #expect(APIKeyAuthenticator.hash(first) != APIKeyAuthenticator.hash(second))
    }
}

extension AuthenticationTests {
    /// Authentication belongs to the route group: however the path is spelled, a route that
    /// resolves needs a key.
    @Test func doubledSlashesDoNotSkipAuthentication() async throws {
        try await Self.app(adminKey: APIKeyAuthenticator.generateKey(), tenant: TestEnvironment.uniqueName("tenant")).test(.router) { client in
            for path in ["//v1/models", "/v1//models", "//v1//search", "/v1/models/"] {
                let response = try await client.execute(uri: path, method: path.contains("search") ? .post : .get)
                #expect(response.status == .unauthorized, "\(path) answered \(response.status)")
            }
        }
    }

    /// What reaches an internal service is the key's tenant, signed; a caller's own identity
    /// headers are dropped.
    @Test func theForwardedIdentityIsTheKeysSignedAndTheCallersHeadersAreDropped() async throws {
        let seen = Locked<[String: String]>([:])
        let orchestrator = try TestHTTPServer { request, connection in
            seen.withLock { $0 = request.headers }
            connection.respond(body: Array(#"{"object":"list","data":[]}"#.utf8))
        }
        let tenant = TestEnvironment.uniqueName("tenant")
        let key = APIKeyAuthenticator.generateKey()
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_ADMIN_KEY"] = key
        values["CONDUIT_ADMIN_TENANT"] = tenant
        values["CONDUIT_ORCHESTRATOR_URL"] = orchestrator.baseURL
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(values))
        let forged = TestIdentity.headers(tenant: "someone-else", requestID: "req-forged")
        try await buildApplication(configuration: configuration, logger: Logger(label: "gateway-test")).test(.router) { client in
            var headers: HTTPFields = [.authorization: "Bearer \(key)", HTTPField.Name("X-Conduit-Tenant")!: "someone-else",
                                       HTTPField.Name("X-Request-Id")!: "req-forged"]
            headers[HTTPField.Name("X-Conduit-Identity")!] = forged[1].value
            let response = try await client.execute(uri: "/v1/models", method: .get, headers: headers)
            #expect(response.status == .ok)
        }
        let sent = seen.withLock { $0 }
        #expect(sent["x-conduit-tenant"] == nil)
        let token = try #require(sent["x-conduit-identity"])
        #expect(token != forged[1].value)
        let identity = try TestIdentity.keyring.verify(token, requestID: try #require(sent["x-request-id"]))
        #expect(identity.tenant == tenant)
        #expect(identity.keyID == "admin-" + tenant)
    }
}
