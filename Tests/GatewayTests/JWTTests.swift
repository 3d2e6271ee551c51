import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import NIOCore
import Testing
import TestSupport

/// Bearer JWTs through the gateway's router: tokens signed here with ES256 and EdDSA keys whose
/// public halves are the issuer's JWKS (handed to the verifier as the issuer would serve it; the
/// fetch over HTTP is tested in GatewayStoreTests). Valid tokens reach the services with the
/// claims' tenant, role, team and user; every other kind is a 401 that says why.
@Suite(.timeLimit(.minutes(1)))
struct JWTTests {
    struct Claims: JWTPayload {
        var values: [String: JSONValue]
        init(_ values: [String: JSONValue]) { self.values = values }
        init(from decoder: any Decoder) throws { values = try [String: JSONValue](from: decoder) }
        func encode(to encoder: any Encoder) throws { try values.encode(to: encoder) }
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    let es = ES256PrivateKey()
    let rotatedIn = ES256PrivateKey()
    let ed: EdDSA.PrivateKey
    let jwks = Locked<[UInt8]>([])
    let fetches = Locked(0)

    init() throws {
        ed = try EdDSA.PrivateKey()
        publish(rotated: false)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The issuer's JWKS: the ES256 and EdDSA keys, and the second ES256 key once rotated in.
    func publish(rotated: Bool) {
        func ec(_ key: ES256PrivateKey, _ kid: String) -> String {
            let (x, y) = key.parameters!
            return #"{"kty":"EC","crv":"P-256","kid":"\#(kid)","alg":"ES256","x":"\#(x)","y":"\#(y)"}"#
        }
        var keys = [ec(es, "es-1"), #"{"kty":"OKP","crv":"Ed25519","kid":"ed-1","alg":"EdDSA","x":"\#(Self.base64URL(ed.publicKey.rawRepresentation))"}"#]
        if rotated { keys.append(ec(rotatedIn, "es-2")) }
        jwks.withLock { $0 = Array(#"{"keys":[\#(keys.joined(separator: ","))]}"#.utf8) }
    }

    func verifier() -> JWTVerifier {
        let jwks = self.jwks, fetches = self.fetches
        return JWTVerifier(
            configuration: .init(issuer: "https://idp.example", audience: "conduit", leeway: 30, minRefresh: .zero),
            fetchKeys: { fetches.withLock { $0 += 1 }; return jwks.withLock { $0 } })
    }

    static func claims(tenant: String = "acme", roles: JSONValue = ["developer"], audience: JSONValue = "conduit", issuer: String = "https://idp.example",
                       expiresIn: TimeInterval = 300, notBefore: TimeInterval? = nil) -> Claims {
        var values: [String: JSONValue] = [
            "iss": .string(issuer), "aud": audience, "sub": "ada", "tenant": .string(tenant), "roles": roles, "team": "ml",
            "exp": .number((Date().timeIntervalSince1970 + expiresIn).rounded()),
        ]
        if let notBefore { values["nbf"] = .number((Date().timeIntervalSince1970 + notBefore).rounded()) }
        return Claims(values)
    }

    func sign(_ claims: Claims, with kid: String) async throws -> String {
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: es, kid: "es-1")
        await signer.add(ecdsa: rotatedIn, kid: "es-2")
        await signer.add(eddsa: ed, kid: "ed-1")
        return try await signer.sign(claims, kid: JWKIdentifier(string: kid))
    }

    static func search(_ client: some TestClientProtocol, _ token: String) async throws -> (status: HTTPResponse.Status, message: String) {
        let response = try await client.execute(
            uri: "/v1/search", method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"collection":"c","query":"x"}"#))
        return (response.status, JSONValue.parse(Array(response.body.readableBytesView))?["error"]?["message"]?.stringValue ?? "")
    }

    @Test func validTokensCarryTheirClaimsToTheServices() async throws {
        var harness = GatewayHarness()
        harness.jwt = verifier()
        let es = try await sign(Self.claims(), with: "es-1")
        let ed = try await sign(Self.claims(roles: "viewer admin"), with: "ed-1")
        try await harness.app().test(.router) { client in
            // The retriever is not there: a 502 means the token got through.
            let answer1 = try await Self.search(client, es)
            #expect(answer1.status == .badGateway)
            let answer2 = try await Self.search(client, ed)
            #expect(answer2.status == .badGateway)
        }
        let tokens = harness.services.received.compactMap { $0.headers["x-conduit-identity"] }
        #expect(tokens.count == 2)
        let identity = try TestIdentity.keyring.verify(tokens[0], requestID: harness.services.received[0].headers["x-request-id"] ?? "")
        #expect(identity.tenant == "acme" && identity.roles == ["developer"] && identity.user == "ada" && identity.team == "ml" && identity.keyID == "jwt:ada")
        let second = try TestIdentity.keyring.verify(tokens[1], requestID: harness.services.received[1].headers["x-request-id"] ?? "")
        #expect(second.roles == ["viewer"])
    }

    @Test func expiredEarlyWronglyAddressedUnsignedAndConfusedTokensAreRefused() async throws {
        var harness = GatewayHarness()
        harness.jwt = verifier()
        let expired = try await sign(Self.claims(expiresIn: -120), with: "es-1")
        let early = try await sign(Self.claims(notBefore: 600), with: "es-1")
        let otherAudience = try await sign(Self.claims(audience: ["someone-else"]), with: "es-1")
        let otherIssuer = try await sign(Self.claims(issuer: "https://evil.example"), with: "es-1")
        let badTenant = try await sign(Self.claims(tenant: "a:b"), with: "es-1")
        let payload = Self.base64URL(try JSONEncoder().encode(Self.claims()))
        let unsigned = Self.base64URL(Data(#"{"alg":"none","kid":"es-1","typ":"JWT"}"#.utf8)) + "." + payload + "."
        // HS256 with the issuer's public key as the HMAC secret: the classic algorithm confusion.
        let hmac = JWTKeyCollection()
        await hmac.add(hmac: HMACKey(from: Data(jwks.withLock { $0 })), digestAlgorithm: .sha256, kid: "es-1")
        let confused = try await hmac.sign(Self.claims(), kid: "es-1")
        // The right header and claims, somebody else's signature.
        let parts = try await sign(Self.claims(), with: "es-1").split(separator: ".")
        let forged = parts[0] + "." + Self.base64URL(try JSONEncoder().encode(Self.claims(roles: ["admin"]))) + "." + parts[2]
        try await harness.app().test(.router) { client in
            for (token, reason) in [(expired, "expired"), (early, "not valid yet"), (otherAudience, "audience"), (otherIssuer, "issuer"),
                                    (badTenant, "tenant"), (unsigned, "algorithm"), (confused, "algorithm"), (String(forged), "signature")] {
                let answer = try await Self.search(client, token)
                #expect(answer.status == .unauthorized, "\(reason)")
                #expect(answer.message.contains(reason), "\(answer.message)")
            }
        }
        #expect(harness.services.received.isEmpty)
    }

    @Test func aKeyTheIssuerRotatesInIsFetchedWhenATokenFirstNamesIt() async throws {
        var harness = GatewayHarness()
        harness.jwt = verifier()
        let token = try await sign(Self.claims(), with: "es-2")
        try await harness.app().test(.router) { client in
            let before = try await Self.search(client, token)
            #expect(before.status == .unauthorized && before.message.contains("'es-2'"))
            publish(rotated: true)
            let answer3 = try await Self.search(client, token)
            #expect(answer3.status == .badGateway)
            let answer4 = try await Self.search(client, token)
            #expect(answer4.status == .badGateway)
        }
        // Fetched at the first token, again for the unknown key, and no more once it is known.
        #expect(fetches.withLock { $0 } == 2)
    }

    @Test func aTokenWithoutAConfiguredIssuerIsRefused() async throws {
        let token = try await sign(Self.claims(), with: "es-1")
        try await GatewayHarness().app().test(.router) { client in
            let answer = try await Self.search(client, token)
            #expect(answer.status == .unauthorized && answer.message.contains("CONDUIT_JWT_ISSUER"))
        }
    }
}
