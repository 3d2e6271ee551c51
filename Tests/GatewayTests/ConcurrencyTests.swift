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

/// Requests in flight per key and per tenant, decided with the other rate limits: a key's own
/// `max_concurrent` or the default; the place is given back once the response (a stream's last
/// byte included) is written.
@Suite(.timeLimit(.minutes(1)))
struct ConcurrencyTests {
    static func chat(_ client: some TestClientProtocol, key: String, stream: Bool = false) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/chat/completions", method: .post, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"model":"m","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#))
    }



    @Test func aKeyAtItsLimitIsRefusedAndEveryAnswerGivesItsPlaceBack() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter)
        let key = harness.installKey("key-busy") { $0.key.maxConcurrent = 2 }
        // Two places already taken (by requests on other replicas).
        try await limiter.occupy("rl:key-busy:conc", id: "elsewhere-1", limit: 2)
        try await limiter.occupy("rl:key-busy:conc", id: "elsewhere-2", limit: 2)
        try await harness.app().test(.router) { client in
            let refused = try await Self.chat(client, key: key)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] == "1")
            let error = JSONValue.parse(Array(refused.body.readableBytesView))?["error"]
            #expect(error?["type"] == "rate_limit_error" && error?["code"] == "concurrency_limit_exceeded")
            #expect(error?["message"]?.stringValue?.contains("this API key may have 2 in flight") == true)

            try await limiter.vacate("rl:key-busy:conc", id: "elsewhere-1")
            let json = try await Self.chat(client, key: key)
            #expect(json.status == .ok)
            let stream = try await Self.chat(client, key: key, stream: true)
            #expect(stream.status == .ok && String(buffer: stream.body).contains("[DONE]"))
        }
        // Both admitted requests gave their place back (just after their answers); the other replica's is still held.
        _ = try await eventually(within: .seconds(2)) { limiter.released.count >= 2 }
        #expect(limiter.released.count == 2)
        #expect(limiter.held("rl:key-busy:conc") == 1)
    }

    @Test func aTenantsLimitHoldsAcrossItsKeysAndTakesNoPlaceOfAKeyWhenRefused() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter, environment: ["CONDUIT_GATEWAY_MAX_CONCURRENT_PER_TENANT": "1"])
        let key = harness.installKey("key-own") { $0.key.maxConcurrent = 5 }
        // Another key of the tenant has its one place.
        try await limiter.occupy("rl:tenant:acme:conc", id: "other-key", limit: 1)
        try await harness.app().test(.router) { client in
            let refused = try await Self.chat(client, key: key)
            #expect(refused.status == .tooManyRequests)
            #expect(String(buffer: refused.body).contains("this tenant may have 1 in flight"))
            #expect(limiter.held("rl:key-own:conc") == 0)
            try await limiter.vacate("rl:tenant:acme:conc", id: "other-key")
            #expect(try await Self.chat(client, key: key).status == .ok)
        }
        _ = try await eventually(within: .seconds(2)) { limiter.held("rl:key-own:conc") == 0 }
        #expect(limiter.held("rl:tenant:acme:conc") == 0 && limiter.held("rl:key-own:conc") == 0)
    }

    @Test func aPlaceComesBackWhenTheServiceBehindFails() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter)
        let key = harness.installKey("key-search") { $0.key.maxConcurrent = 1 }
        try await harness.app().test(.router) { client in
            for _ in 0..<3 {
                // The fake retriever is unreachable: 502, and the place is free again at once.
                let response = try await client.execute(
                    uri: "/v1/search", method: .post, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
                    body: ByteBuffer(string: #"{"collection":"c","query":"q"}"#))
                #expect(response.status == .badGateway)
            }
        }
        #expect(limiter.held("rl:key-search:conc") == 0 && limiter.released.count == 3)
    }

    @Test func withoutRedisTheLimitIsKeptInThisReplica() async throws {
        let harness = GatewayHarness(limiter: CountingRateLimiter(failing: true), environment: ["CONDUIT_GATEWAY_MAX_CONCURRENT_PER_KEY": "1"])
        let key = harness.key
        try await harness.app().test(.router) { client in
            // The default applies to the admin key; Redis is away: this replica counts it.
            let response = try await Self.chat(client, key: key)
            #expect(response.status == .ok)
        }
        var bytes: [UInt8] = []
        harness.registry.emit(into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self).contains("gateway_rate_limit_fallback_total 1"))
    }
}
