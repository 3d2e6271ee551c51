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

    static func chat(_ client: some TestClientProtocol, key: String, model: String = "m", maxTokens: Int? = nil, stream: Bool = false) async throws -> TestResponse {
        let limit = maxTokens.map { #","max_tokens":\#($0)"# } ?? ""
        return try await client.execute(
            uri: "/v1/chat/completions", method: .post, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"model":"\#(model)","stream":\#(stream)\#(limit),"messages":[{"role":"user","content":"hi"}]}"#))
    }



    @Test func eachKeyGetsItsRequestsPerMinuteThenA429WithOpenAIsHeaders() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter, environment: ["CONDUIT_GATEWAY_RPM_PER_KEY": "3"])
        let other = APIKeyAuthenticator.generateKey()
        try await APIKeyAuthenticator(store: harness.keys).installAdminKey(other, tenant: "beta")
        try await harness.app().test(.router) { client in
            // Three in any minute; the window is empty again a minute after the last.
            for (remaining, reset) in [("2", "60s"), ("1", "60s"), ("0", "60s")] {
                let response = try await Self.models(client, key: harness.key)
                #expect(response.status == .ok)
                #expect(Self.header(response, "x-ratelimit-limit-requests") == "3")
                #expect(Self.header(response, "x-ratelimit-remaining-requests") == remaining)
                #expect(Self.header(response, "x-ratelimit-reset-requests") == reset)
                // No token limit: no token headers.
                #expect(Self.header(response, "x-ratelimit-limit-tokens") == nil)
            }
            let refused = try await Self.models(client, key: harness.key)
            #expect(refused.status == .tooManyRequests)
            // The first request leaves the window a minute after it came (less however long the
            // machine took since).
            #expect(refused.headers[.retryAfter].flatMap(Int.init).map { $0 > 40 && $0 <= 60 } == true)
            #expect(Self.header(refused, "x-ratelimit-remaining-requests") == "0")
            let error = JSONValue.parse(Array(refused.body.readableBytesView))?["error"]
            #expect(error?["type"] == "rate_limit_error" && error?["code"] == "rate_limit_exceeded")
            #expect(error?["message"]?.stringValue?.contains("3 requests per minute for this API key") == true)
            // Another key has its own bucket.
            #expect(try await Self.models(client, key: other).status == .ok)
            // A request without a valid key is refused before it is counted.
            #expect(try await Self.models(client, key: "cdt-nope").status == .unauthorized)
        }
        #expect(limiter.buckets == ["rl:admin-acme:rpm": 3, "rl:admin-beta:rpm": 1])
        // The refused request never reached a service.
        #expect(harness.services.received.count == 4)
    }

    @Test func tokensAreReservedFromTheRequestAndSettledToWhatTheAnswerUsed() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter)
        let key = harness.installKey("key-tpm") { $0.key.tpm = 1000 }
        harness.services.usageTokens.withLock { $0 = 20 }
        try await harness.app().test(.router) { client in
            // 300 completion tokens and the body's ~27 reserved; the answer used 20.
            let first = try await Self.chat(client, key: key, maxTokens: 300)
            #expect(first.status == .ok)
            #expect(Self.header(first, "x-ratelimit-limit-tokens") == "1000")
            let left = try #require(Self.header(first, "x-ratelimit-remaining-tokens").flatMap(Int.init))
            #expect(left > 650 && left < 700)
            // The orchestrator's count is the gateway's business only.
            #expect(Self.header(first, ConduitHeader.usageTokens) == nil)
            _ = try await eventually(within: .seconds(2)) { !limiter.settlements.isEmpty }
            let delta = try #require(limiter.settlements.first?.delta)
            #expect(delta == 20 - (1000 - left))
            // What came back makes room for a request that would not have fitted before; it uses 900.
            harness.services.usageTokens.withLock { $0 = 900 }
            let second = try await Self.chat(client, key: key, maxTokens: 900)
            #expect(second.status == .ok)
            _ = try await eventually(within: .seconds(2)) { limiter.settlements.count == 2 }
            let third = try await Self.chat(client, key: key, maxTokens: 900)
            #expect(third.status == .tooManyRequests)
            #expect(third.headers[.retryAfter] != nil)
            let error = JSONValue.parse(Array(third.body.readableBytesView))?["error"]
            #expect(error?["message"]?.stringValue?.contains("1000 tokens per minute for this API key") == true)
            #expect(Self.header(third, "x-ratelimit-remaining-tokens").flatMap(Int.init).map { $0 < 900 } == true)
            // Routes without tokens count requests only (none here) and read no body.
            #expect(Self.header(try await Self.models(client, key: key), "x-ratelimit-limit-tokens") == nil)
        }
        // The gateway asked the orchestrator for the count.
        #expect(harness.services.received.first?.headers[ConduitHeader.reportUsage.lowercased()] == "1")
    }

    @Test func aStreamSettlesFromItsCountCommentEvenSplitAcrossChunks() async throws {
        let limiter = CountingRateLimiter()
        let harness = GatewayHarness(limiter: limiter)
        let key = harness.installKey("key-stream") { $0.key.tpm = 5000 }
        harness.services.usageTokens.withLock { $0 = 7 }
        try await harness.app().test(.router) { client in
            let response = try await Self.chat(client, key: key, maxTokens: 1000, stream: true)
            #expect(response.status == .ok)
            #expect(String(buffer: response.body).hasSuffix("data: [DONE]\n\n"))
            _ = try await eventually(within: .seconds(2)) { !limiter.settlements.isEmpty }
            let reserved = 5000 - (Self.header(response, "x-ratelimit-remaining-tokens").flatMap(Int.init) ?? 0)
            #expect(limiter.settlements.map(\.delta) == [7 - reserved])
        }
    }

    @Test func aTenantsLimitCountsEveryKeyOfItAndAModelsLimitOnlyThatModel() async throws {
        let harness = GatewayHarness(limiter: CountingRateLimiter())
        let first = harness.installKey("key-one") { $0.tenant.rpm = 3 }
        let second = harness.installKey("key-two") { $0.tenant.rpm = 3; $0.keyModels = ["big": RateLimits(rpm: 1)] }
        try await harness.app().test(.router) { client in
            #expect(try await Self.models(client, key: first).status == .ok)
            #expect(try await Self.chat(client, key: second, model: "big").status == .ok)
            // The key's one request a minute to `big` is used; other models are not limited by it.
            let big = try await Self.chat(client, key: second, model: "big")
            #expect(big.status == .tooManyRequests)
            #expect(JSONValue.parse(Array(big.body.readableBytesView))?["error"]?["message"]?.stringValue?.contains("API key and model") == true)
            #expect(try await Self.chat(client, key: second, model: "small").status == .ok)
            // Three for the tenant, whichever key sent them.
            let refused = try await Self.models(client, key: first)
            #expect(refused.status == .tooManyRequests)
            #expect(JSONValue.parse(Array(refused.body.readableBytesView))?["error"]?["message"]?.stringValue?.contains("3 requests per minute for this tenant") == true)
        }
    }

    @Test func aKeyMayUseOnlyItsModels() async throws {
        let harness = GatewayHarness()
        let key = harness.installKey("key-models") { $0.allowedModels = ["m", "auto"] }
        try await harness.app().test(.router) { client in
            #expect(try await Self.chat(client, key: key, model: "m").status == .ok)
            let refused = try await Self.chat(client, key: key, model: "gpt-4o")
            #expect(refused.status == .forbidden)
            let error = JSONValue.parse(Array(refused.body.readableBytesView))?["error"]
            #expect(error?["code"] == "model_not_allowed" && error?["param"] == "model")
            // The model list shows the key's models only; another model is not there to read.
            let listed = JSONValue.parse(Array(try await Self.models(client, key: key).body.readableBytesView))
            #expect(listed?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["m", "auto"])
            let hidden = try await client.execute(uri: "/v1/models/gpt-4o", method: .get, headers: [.authorization: "Bearer \(key)"])
            #expect(hidden.status == .notFound)
            // A key without a list sees every model.
            let all = JSONValue.parse(Array(try await Self.models(client, key: harness.key).body.readableBytesView))
            #expect(all?["data"]?.arrayValue?.count == 3)
        }
        #expect(harness.services.received.count == 3)
        // The list goes on, signed, so that a router chooses among these models only.
        let first = try #require(harness.services.received.first)
        let signed = try TestIdentity.keyring.verify(try #require(first.headers["x-conduit-identity"]), requestID: try #require(first.headers["x-request-id"]))
        #expect(signed.models == ["m", "auto"])
    }

    @Test func withoutALimitNothingIsCountedAndWithoutRedisEachReplicaLimitsItsShare() async throws {
        let unlimited = GatewayHarness()
        try await unlimited.app().test(.router) { client in
            let response = try await Self.models(client, key: unlimited.key)
            #expect(response.status == .ok)
            #expect(Self.header(response, "x-ratelimit-limit-requests") == nil)
        }
        #expect((unlimited.limiter as? CountingRateLimiter)?.buckets.isEmpty == true)

        // Redis is down: this replica, one of two, allows half of the six a minute on its own.
        let down = GatewayHarness(
            limiter: CountingRateLimiter(failing: true),
            environment: ["CONDUIT_GATEWAY_RPM_PER_KEY": "6", "CONDUIT_GATEWAY_RATE_LIMIT_FALLBACK_REPLICAS": "2"])
        try await down.app().test(.router) { client in
            for _ in 0..<3 {
                let response = try await Self.models(client, key: down.key)
                #expect(response.status == .ok)
                #expect(Self.header(response, "x-ratelimit-limit-requests") == "3")
            }
            #expect(try await Self.models(client, key: down.key).status == .tooManyRequests)
        }
        var buffer: [UInt8] = []
        down.registry.emit(into: &buffer)
        let metrics = String(decoding: buffer, as: UTF8.self)
        #expect(metrics.contains("gateway_rate_limit_fallback_total 4"))
        #expect(metrics.contains("gateway_rate_limit_degraded 1"))
    }

    @Test func theUsageScannerFindsTheCountWhereverChunksSplitIt() {
        let text = "data: {\"x\":1}\n\n" + ConduitHeader.usageComment + "12345\n\ndata: [DONE]\n\n"
        let bytes = Array(text.utf8)
        for split in 1..<bytes.count {
            let scanner = UsageScanner()
            scanner.read(ByteBuffer(bytes: bytes[..<split]))
            scanner.read(ByteBuffer(bytes: bytes[split...]))
            #expect(scanner.tokens == 12345, "split at \(split)")
        }
        let none = UsageScanner()
        none.read(ByteBuffer(string: "data: [DONE]\n\n"))
        #expect(none.tokens == nil)
    }

    @Test func durationsAreSpokenAsOpenAIDoes() {
        #expect(RateLimitMiddleware.spoken(.milliseconds(120)) == "120ms")
        #expect(RateLimitMiddleware.spoken(.milliseconds(6000)) == "6s")
        #expect(RateLimitMiddleware.spoken(.milliseconds(6001)) == "7s")
        #expect(RateLimitMiddleware.wholeSeconds(.milliseconds(1500)) == 2)
    }
}
