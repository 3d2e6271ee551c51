import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TestSupport

/// Limits as a platform team sets them, through the API, enforced by real gateways over the test
/// stack's Postgres and Redis: a tenant's and a model's limits set with `/v1/tenants` and
/// `/v1/keys`, and one key's 60 requests a minute shared by two replicas and sixteen clients.
@Suite(.timeLimit(.minutes(3)))
struct RateLimitsAPITests {
    let keys = KeysAPITests()

    static func search(_ client: some TestClientProtocol, key: String) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/search", method: .post, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"collection":"c","query":"x"}"#))
    }

    @Test func tenantAndModelLimitsAreSetThroughTheAPIAndReachTheKeysAtOnce() async throws {
        let other = TestEnvironment.uniqueName("limited")
        try await keys.app().test(.live) { client in
            let admin = keys.adminKey
            let created = try await KeysAPITests.call(client, .post, "/v1/tenants", key: admin,
                                                      #"{"name":"Limited","id":"\#(other)","rpm_limit":100,"model_limits":{"big":{"tpm_limit":5000}}}"#)
            #expect(created.status == .created && created.json?["rpm_limit"] == 100 && created.json?["model_limits"]?["big"]?["tpm_limit"] == 5000)
            let tenantAdmin = try await keys.makeKey(client, #"{"tenant":"\#(other)","role":"admin"}"#)
            let developer = try await keys.makeKey(
                client, #"{"role":"developer","models":["small","auto"],"tpm_limit":2000,"model_limits":{"small":{"rpm_limit":50}}}"#, by: tenantAdmin.key)
            #expect(developer.answer.status == .created)
            #expect(developer.answer.json?["models"]?.arrayValue?.compactMap(\.stringValue) == ["auto", "small"])
            #expect(developer.answer.json?["tpm_limit"] == 2000 && developer.answer.json?["model_limits"]?["small"]?["rpm_limit"] == 50)

            // Its admin reads the tenant; only a platform admin changes it; no one sees another's.
            #expect(try await KeysAPITests.call(client, .get, "/v1/tenants/\(other)", key: tenantAdmin.key).json?["rpm_limit"] == 100)
            #expect(try await KeysAPITests.call(client, .get, "/v1/tenants/\(keys.tenant)", key: tenantAdmin.key).status == .notFound)
            #expect(try await KeysAPITests.call(client, .patch, "/v1/tenants/\(other)", key: tenantAdmin.key, #"{"rpm_limit":1}"#).status == .forbidden)
            let bad = try await KeysAPITests.call(client, .patch, "/v1/tenants/\(other)", key: admin, #"{"model_limits":{"big":{"max_concurrent":2}}}"#)
            #expect(bad.status == .badRequest && bad.error?["param"] == "model_limits")
            #expect(try await keys.makeKey(client, #"{"role":"viewer","models":"small"}"#, by: tenantAdmin.key).answer.error?["param"] == "models")

            // The key may use its models only; a model it may not use never reaches a service.
            let refused = try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [.authorization: "Bearer \(developer.key)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"model":"big","messages":[{"role":"user","content":"hi"}]}"#))
            #expect(refused.status == .forbidden)
            #expect(JSONValue.parse(Array(refused.body.readableBytesView))?["error"]?["code"] == "model_not_allowed")

            // The tenant's new limit reaches its keys within a poll: two more requests, then 429.
            let first = try await Self.search(client, key: developer.key)
            #expect(first.headers[HTTPField.Name("x-ratelimit-limit-requests")!] == "100")
            #expect(try await KeysAPITests.call(client, .patch, "/v1/tenants/\(other)", key: admin, #"{"rpm_limit":3}"#).json?["rpm_limit"] == 3)
            #expect(try await eventually(within: .seconds(5)) {
                try await Self.search(client, key: developer.key).headers[HTTPField.Name("x-ratelimit-limit-requests")!] == "3"
            })
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<3 { statuses.append(try await Self.search(client, key: tenantAdmin.key).status) }
            #expect(statuses.last == .tooManyRequests)
            let message = try await Self.search(client, key: developer.key)
            #expect(message.status == .tooManyRequests && message.headers[.retryAfter] != nil)
            #expect(String(buffer: message.body).contains("for this tenant"))
        }
    }

    /// The issue's check: sixteen clients over two replicas, one key of 60 requests a minute, for
    /// a minute. At most 60 (+1 at the window's edge) get through, every other answer is a 429
    /// with `Retry-After`, and the admitted answers count down 59…0.
    @Test func sixteenClientsOnTwoReplicasGetSixtyRequestsAMinuteAndNoMore() async throws {
        let first = try await keys.app()
        let second = try await keys.app()
        try await first.test(.live) { one in
            try await second.test(.live) { two in
                let made = try await keys.makeKey(one, #"{"role":"developer","rpm_limit":60}"#)
                #expect(made.answer.status == .created)
                // Both replicas' watchers have seen the new key (no unknown-key lookups to ration).
                try await Task.sleep(for: .milliseconds(1500))
                struct Outcome: Sendable {
                    var sent: ContinuousClock.Instant
                    var at: ContinuousClock.Instant
                    var status: HTTPResponse.Status
                    var remaining: Int?
                    var retryAfter: String?
                }
                let start = ContinuousClock.now
                let end = start + .seconds(61)
                let outcomes = try await withThrowingTaskGroup(of: [Outcome].self) { group in
                    for client in 0..<16 {
                        group.addTask {
                            var seen: [Outcome] = []
                            while ContinuousClock.now < end {
                                let sent = ContinuousClock.now
                                let response = client % 2 == 0 ? try await Self.search(one, key: made.key) : try await Self.search(two, key: made.key)
                                seen.append(Outcome(
                                    sent: sent, at: .now, status: response.status,
                                    remaining: response.headers[HTTPField.Name("x-ratelimit-remaining-requests")!].flatMap(Int.init),
                                    retryAfter: response.headers[.retryAfter]))
                                // A request a second per client: pressure enough, without loading the test machine.
                                try await Task.sleep(for: .seconds(1))
                            }
                            return seen
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                // Forwarded (502: no retriever here) is admitted; the rest must be 429s.
                let admitted = outcomes.filter { $0.status != .tooManyRequests }.sorted { $0.at < $1.at }
                let refused = outcomes.filter { $0.status == .tooManyRequests }
                #expect(admitted.allSatisfy { $0.status == .badGateway })
                // Redis admits each request somewhere between its sending and its answer. Every answer
                // that arrived within 60 s of the earliest admitted request's sending was admitted
                // within 60 s of Redis's first admission, however slow the answers were: those are
                // the ones the window bounds.
                let firstSent = try #require(admitted.map(\.sent).min())
                let inTheMinute = admitted.filter { $0.at < firstSent + .seconds(60) }
                #expect(inTheMinute.count <= 61, "\(inTheMinute.count) admitted in the minute")
                #expect(inTheMinute.count >= 55, "\(inTheMinute.count) admitted: the limit starved the key")
                #expect(refused.count > 300, "\(refused.count) refused: the clients did not press the limit")
                #expect(refused.allSatisfy { $0.retryAfter.flatMap(Int.init).map { $0 >= 1 && $0 <= 60 } ?? false })
                print("rate-limit-replicas: requests=\(outcomes.count) admitted_in_minute=\(inTheMinute.count) admitted=\(admitted.count) refused=\(refused.count)")
                // Each place in the window was given once: remaining counts down 59…0.
                let burst = admitted.prefix(60).compactMap(\.remaining)
                #expect(Set(burst) == Set(0..<60) && burst.count == 60)
            }
        }
    }
}
