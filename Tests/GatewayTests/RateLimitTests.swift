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

/// Requests per minute per key through the gateway's router, over an in-process limiter.
@Suite(.timeLimit(.minutes(1)))
struct RateLimitTests {
    static func models(_ client: some TestClientProtocol, key: String) async throws -> TestResponse {
        try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(key)"])
    }

    static func header(_ response: TestResponse, _ name: String) -> String? { response.headers[HTTPField.Name(name)!] }

    @Test func eachKeyGetsItsRequestsPerMinuteThenA429WithOpenAIsHeaders() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter, environment: ["CONDUIT_GATEWAY_RPM_PER_KEY": "3"])
        let other = APIKeyAuthenticator.generateKey()
        try await APIKeyAuthenticator(store: harness.keys).installAdminKey(other, tenant: "beta")
        try await harness.app().test(.router) { client in
            for remaining in ["2", "1", "0"] {
                let response = try await Self.models(client, key: harness.key)
                #expect(response.status == .ok)
                #expect(Self.header(response, "x-ratelimit-limit-requests") == "3")
                #expect(Self.header(response, "x-ratelimit-remaining-requests") == remaining)
                #expect(Self.header(response, "x-ratelimit-reset-requests") == "500ms")
            }
            let refused = try await Self.models(client, key: harness.key)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] == "2")
            #expect(Self.header(refused, "x-ratelimit-remaining-requests") == "0")
            let error = JSONValue.parse(Array(refused.body.readableBytesView))?["error"]
            #expect(error?["type"] == "rate_limit_error" && error?["code"] == "rate_limit_exceeded")
            #expect(error?["message"]?.stringValue?.contains("3 requests per minute") == true)
            // Another key has its own bucket.
            #expect(try await Self.models(client, key: other).status == .ok)
            // A request without a valid key is refused before it is counted.
            #expect(try await Self.models(client, key: "cdt-nope").status == .unauthorized)
        }
        #expect(limiter.buckets == ["rl:admin-acme:rpm": 3, "rl:admin-beta:rpm": 1])
        // The refused request never reached a service.
        #expect(harness.services.received.count == 4)
    }

    @Test func withoutALimitNothingIsCountedAndAnUnreachableLimiterLetsRequestsThrough() async throws {
        let unlimited = GatewayHarness()
        try await unlimited.app().test(.router) { client in
            let response = try await Self.models(client, key: unlimited.key)
            #expect(response.status == .ok)
            #expect(Self.header(response, "x-ratelimit-limit-requests") == nil)
        }
        #expect((unlimited.limiter as? CountingRateLimiter)?.buckets.isEmpty == true)

        let down = GatewayHarness(limiter: CountingRateLimiter(failing: true), environment: ["CONDUIT_GATEWAY_RPM_PER_KEY": "3"])
        try await down.app().test(.router) { client in
            for _ in 0..<5 {
                let status = try await Self.models(client, key: down.key).status
                #expect(status == .ok)
            }
        }
        var buffer: [UInt8] = []
        down.registry.emit(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self).contains("gateway_rate_limit_unavailable_total 5"))
    }

    @Test func durationsAreSpokenAsOpenAIDoes() {
        #expect(RateLimitMiddleware.spoken(.milliseconds(120)) == "120ms")
        #expect(RateLimitMiddleware.spoken(.milliseconds(6000)) == "6s")
        #expect(RateLimitMiddleware.spoken(.milliseconds(6001)) == "7s")
        #expect(RateLimitMiddleware.wholeSeconds(.milliseconds(1500)) == 2)
    }
}
