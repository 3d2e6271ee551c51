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
