import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Testing
import TestSupport

/// Requests in flight per key: a key's own `max_concurrent` or the default; the place is given
/// back once the response (a stream's last byte included) is written.
@Suite(.timeLimit(.minutes(1)))
struct ConcurrencyTests {
    static func chat(_ client: some TestClientProtocol, key: String, stream: Bool = false) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/chat/completions", method: .post, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"model":"m","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#))
    }

    @Test func aKeyAtItsLimitIsRefusedAndEveryAnswerGivesItsPlaceBack() async throws {
        let harness = GatewayHarness()
        let key = APIKeyAuthenticator.generateKey()
        var identity = CallerIdentity(tenant: "acme", keyID: "key-busy", roles: ["developer"])
        identity.limits.key.maxConcurrent = 2
        harness.keys.install(hash: APIKeyAuthenticator.hash(key), identity: identity)
        // Two places already taken (by requests on other replicas).
        _ = try await harness.concurrency.enter("rl:key-busy:conc", id: "elsewhere-1", limit: 2, ttl: .seconds(60))
        _ = try await harness.concurrency.enter("rl:key-busy:conc", id: "elsewhere-2", limit: 2, ttl: .seconds(60))
        try await harness.app().test(.router) { client in
            let refused = try await Self.chat(client, key: key)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] == "1")
            let error = JSONValue.parse(Array(refused.body.readableBytesView))?["error"]
            #expect(error?["type"] == "rate_limit_error" && error?["code"] == "concurrency_limit_exceeded")

            try await harness.concurrency.leave("rl:key-busy:conc", id: "elsewhere-1")
            let json = try await Self.chat(client, key: key)
            #expect(json.status == .ok)
            let stream = try await Self.chat(client, key: key, stream: true)
            #expect(stream.status == .ok && String(buffer: stream.body).contains("[DONE]"))
        }
        // Both admitted requests gave their place back (just after their answers); the other replica's is still held.
        for _ in 0..<200 where harness.concurrency.left.withLock({ $0 }).filter({ !$0.hasPrefix("elsewhere") }).count < 2 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(harness.concurrency.left.withLock { $0 }.filter { !$0.hasPrefix("elsewhere") }.count == 2)
        #expect(harness.concurrency.inFlight("rl:key-busy:conc") == 1)
    }

    @Test func aTenantsLimitHoldsAcrossItsKeysAndTakesNoPlaceOfAKeyWhenRefused() async throws {
        let harness = GatewayHarness(environment: ["CONDUIT_GATEWAY_MAX_CONCURRENT_PER_TENANT": "1"])
        let key = APIKeyAuthenticator.generateKey()
        var identity = CallerIdentity(tenant: "acme", keyID: "key-own", roles: ["developer"])
        identity.limits.key.maxConcurrent = 5
        harness.keys.install(hash: APIKeyAuthenticator.hash(key), identity: identity)
        // Another key of the tenant has its one place.
        _ = try await harness.concurrency.enter("rl:tenant:acme:conc", id: "other-key", limit: 1, ttl: .seconds(60))
        try await harness.app().test(.router) { client in
            let refused = try await Self.chat(client, key: key)
            #expect(refused.status == .tooManyRequests)
            #expect(String(buffer: refused.body).contains("this tenant may have 1 in flight"))
            #expect(harness.concurrency.inFlight("rl:key-own:conc") == 0)
            try await harness.concurrency.leave("rl:tenant:acme:conc", id: "other-key")
            #expect(try await Self.chat(client, key: key).status == .ok)
        }
        for _ in 0..<200 where harness.concurrency.inFlight("rl:key-own:conc") > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(harness.concurrency.inFlight("rl:tenant:acme:conc") == 0 && harness.concurrency.inFlight("rl:key-own:conc") == 0)
    }

    @Test func withoutALimitOrALimiterRequestsGoThrough() async throws {
        var harness = GatewayHarness()
        harness.environment["CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY"] = "1"
        harness.concurrency.unreachable.withLock { $0 = true }
        let key = harness.key
        try await harness.app().test(.router) { client in
            // The default applies to the admin key, but Redis is away: let through and counted.
            let response = try await Self.chat(client, key: key)
            #expect(response.status == .ok)
        }
        var bytes: [UInt8] = []
        harness.registry.emit(into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self).contains("gateway_concurrency_limit_unavailable_total 1"))
    }
}
