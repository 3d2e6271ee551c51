import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import Logging
import NIOCore
import Testing
import TestSupport

/// The gateway as it runs, configured for an issuer whose JWKS a local server serves: the keys
/// are fetched over HTTP, and a token they sign gets through.
@Suite(.timeLimit(.minutes(2)))
struct JWKSFetchTests {
    struct Claims: JWTPayload {
        var sub = "grace"
        var iss = "https://idp.test"
        var aud = "conduit"
        var tenant: String
        var roles = ["developer"]
        var exp = Int(Date().timeIntervalSince1970) + 300
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    @Test func theIssuersKeysAreFetchedFromItsJWKSURL() async throws {
        let key = ES256PrivateKey()
        let (x, y) = try #require(key.parameters)
        let served = Locked(0)
        let idp = try TestHTTPServer { _, connection in
            served.withLock { $0 += 1 }
            connection.respond(body: Array(#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"\#(x)","y":"\#(y)"}]}"#.utf8))
        }
        let tenant = TestEnvironment.uniqueName("sso")
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_ADMIN_TENANT"] = tenant
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        values["CONDUIT_RETRIEVER_URL"] = "http://127.0.0.1:9"
        values["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("gateway-audit")
        values["CONDUIT_JWT_ISSUER"] = "https://idp.test"
        values["CONDUIT_JWT_AUDIENCE"] = "conduit"
        values["CONDUIT_JWT_JWKS_URL"] = idp.baseURL + "/.well-known/jwks.json"
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(values))
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "k1")
        let token = try await signer.sign(Claims(tenant: tenant), kid: "k1")
        try await buildApplication(configuration: configuration, logger: Logger(label: "gateway-test")).test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/search", method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"collection":"c","query":"x"}"#))
            #expect(response.status == .badGateway)
        }
        #expect(served.withLock { $0 } == 1)
    }
}
