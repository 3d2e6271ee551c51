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

/// The gateway as it runs: API keys in the test stack's Postgres, and the caller's identity
/// forwarded over HTTP. (Authentication and forwarding over in-process fakes: GatewayTests.)
@Suite(.timeLimit(.minutes(2)))
struct APIKeyStoreTests {
    static func app(adminKey: String, tenant: String) async throws -> some ApplicationProtocol {
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_ADMIN_KEY"] = adminKey
        values["CONDUIT_ADMIN_TENANT"] = tenant
        // Nothing listens there: a forwarded request proves it got past authentication.
        values["CONDUIT_RETRIEVER_URL"] = "http://127.0.0.1:9"
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        values["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("gateway-audit")
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

extension APIKeyStoreTests {
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
        values["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("gateway-audit")
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
