import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Testing

/// The identity the gateway signs for internal services: what verifies, what does not, and the
/// route group that refuses everything unsigned.
struct InternalIdentityTests {
    static let key = "conduit-identity-tests-0123456789abcdefghij"
    static let caller = CallerIdentity(tenant: "acme", keyID: "key-1", roles: ["developer", "viewer"], team: "search", user: "ada",
                                       chatDefaults: #"{"rag":{"collection":"handbook"}}"#)

    @Test func aSignedIdentityReadsBackWhole() throws {
        let keyring = try InternalKeyring(current: Self.key)
        let token = try keyring.sign(Self.caller, requestID: "req-1")
        #expect(try keyring.verify(token, requestID: "req-1") == Self.caller)
        let bare = CallerIdentity(tenant: "t", keyID: "k", roles: [])
        #expect(try keyring.verify(try keyring.sign(bare, requestID: "r"), requestID: "r") == bare)
        // A key's models travel too: none listed (nothing allowed) differs from no list (everything).
        for models in [["auto", "gpt-4o-mini"], []] {
            var limited = bare
            limited.models = models
            #expect(try keyring.verify(try keyring.sign(limited, requestID: "r"), requestID: "r").models == models)
        }
        #expect(try keyring.verify(try keyring.sign(bare, requestID: "r"), requestID: "r").models == nil)
    }

    @Test func forgedTamperedExpiredOrBorrowedIdentitiesAreRefused() throws {
        let keyring = try InternalKeyring(current: Self.key, lifetime: .seconds(60))
        let now = Date()
        let token = try keyring.sign(Self.caller, requestID: "req-1", now: now)
        func reason(_ token: String, requestID: String = "req-1", at time: Date = now) -> IdentityError.Reason? {
            do { _ = try keyring.verify(token, requestID: requestID, now: time); return nil } catch { return error.reason }
        }
        let other = try InternalKeyring(current: String(Self.key.reversed()))
        #expect(reason(try other.sign(Self.caller, requestID: "req-1")) == .badSignature)
        // One changed character in the signed form or in the signature. (Not the signature's
        // last character: unpadded base64 leaves bits of it unused, so the bytes can stay the same.)
        func flipped(_ offset: Int) -> String {
            var characters = Array(token)
            characters[offset] = characters[offset] == "A" ? "B" : "A"
            return String(characters)
        }
        #expect(reason(flipped(5)) == .badSignature)
        #expect(reason(flipped(token.count - 10)) == .badSignature)
        #expect(reason(token, at: now.addingTimeInterval(61)) == .expired)
        #expect(reason(token, requestID: "req-2") == .otherRequest)
        #expect(reason("") == .malformed)
        #expect(reason("no-dot-here") == .malformed)
        #expect(reason("a.b.c") == .malformed)
    }

    @Test func rotationAcceptsThePreviousKeyUntilItIsDropped() throws {
        let old = "conduit-old-key-0123456789abcdefghijklmn"
        let new = "conduit-new-key-0123456789abcdefghijklmn"
        let signedWithOld = try InternalKeyring(current: old).sign(Self.caller, requestID: "r")
        let rotating = try InternalKeyring(current: new, previous: old)
        #expect(try rotating.verify(signedWithOld, requestID: "r") == Self.caller)
        #expect(try rotating.verify(try rotating.sign(Self.caller, requestID: "r"), requestID: "r") == Self.caller)
        let rotated = try InternalKeyring(current: new)
        #expect(throws: IdentityError(.badSignature)) { try rotated.verify(signedWithOld, requestID: "r") }
    }

    @Test func keysShorterThanThirtyTwoCharactersAndMissingKeysStopTheStart() throws {
        #expect(throws: ConfigurationError.self) { try InternalKeyring(current: "short") }
        let unset = try ServiceConfiguration(service: .retriever, environment: ConduitEnvironment([:]))
        #expect(throws: ConfigurationError.self) { try unset.requireInternalKeys() }
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration(service: .retriever, environment: ConduitEnvironment(["CONDUIT_INTERNAL_KEY": "short"]))
        }
    }

    @Test func internalRoutesAnswerOnlySignedRequestsAndSeeTheSignedCaller() async throws {
        let configuration = try ServiceConfiguration(service: .retriever, environment: ConduitEnvironment(["CONDUIT_INTERNAL_KEY": Self.key]))
        let router = makeConduitRouter(configuration: configuration, registry: PrometheusCollectorRegistry(), readiness: [])
        try router.internalRoutes(configuration).get("/v1/whoami") { _, context in
            let caller = try context.caller()
            return "\(caller.tenant) \(caller.keyID) \(caller.roles.joined(separator: ","))"
        }
        let app = makeConduitApplication(router: router, configuration: configuration, services: [], logger: Logger(label: "test"))
        let token = try InternalKeyring(current: Self.key).sign(Self.caller, requestID: "req-9")
        try await app.test(.router) { client in
            let signed: HTTPFields = [HTTPField.Name("X-Request-Id")!: "req-9", HTTPField.Name("X-Conduit-Identity")!: token]
            let answer = try await client.execute(uri: "/v1/whoami", method: .get, headers: signed)
            #expect(answer.status == .ok)
            #expect(String(buffer: answer.body) == "acme key-1 developer,viewer")
            for path in ["/v1/whoami", "//v1/whoami", "/v1//whoami"] {
                let unsigned = try await client.execute(uri: path, method: .get, headers: [HTTPField.Name("X-Conduit-Tenant")!: "acme"])
                #expect(unsigned.status == .unauthorized, "\(path)")
                let envelope = try JSONDecoder().decode(ErrorEnvelope.self, from: Data(unsigned.body.readableBytesView))
                #expect(envelope.error.type == "authentication_error")
                #expect(envelope.error.code == "invalid_internal_identity")
            }
            // Health stays open for probes.
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }
}
