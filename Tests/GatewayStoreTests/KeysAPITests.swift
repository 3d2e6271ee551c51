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

/// The admin API for tenants and keys over the test stack's Postgres, the gateway as it runs
/// (its key watcher included): roles, tenant isolation, revocation reaching another replica,
/// rotation with a grace period, expiry, and a flood of made-up keys that does not become a flood
/// of queries.
@Suite(.timeLimit(.minutes(2)))
struct KeysAPITests {
    let tenant = TestEnvironment.uniqueName("keys")
    let adminKey = APIKeyAuthenticator.generateKey()

    func app() async throws -> some ApplicationProtocol {
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_ADMIN_KEY"] = adminKey
        values["CONDUIT_ADMIN_TENANT"] = tenant
        values["CONDUIT_GATEWAY_PORT"] = "0"
        // Nothing listens there: a forwarded request (502) proves it got past authentication.
        values["CONDUIT_RETRIEVER_URL"] = "http://127.0.0.1:9"
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        values["CONDUIT_GATEWAY_UNKNOWN_KEY_LOOKUPS_PER_S"] = "5"
        values["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("gateway-audit")
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(values))
        return try await buildApplication(configuration: configuration, logger: Logger(label: "gateway-test"))
    }

    struct Answer {
        var status: HTTPResponse.Status
        var json: JSONValue?
        var error: JSONValue? { json?["error"] }
    }

    static func call(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String, _ body: String? = nil) async throws -> Answer {
        let response = try await client.execute(
            uri: uri, method: method, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"], body: body.map { ByteBuffer(string: $0) })
        return Answer(status: response.status, json: JSONValue.parse(Array(response.body.readableBytesView)))
    }

    /// Whether `key` authenticates: a search reaches forwarding (502, no retriever) or is a 401.
    static func works(_ client: some TestClientProtocol, _ key: String) async throws -> Bool {
        let answer = try await call(client, .post, "/v1/search", key: key, #"{"collection":"c","query":"x"}"#)
        #expect(answer.status == .badGateway || answer.status == .unauthorized, "\(answer.status) \(String(describing: answer.json))")
        return answer.status == .badGateway
    }

    func makeKey(_ client: some TestClientProtocol, _ body: String, by key: String? = nil) async throws -> (id: String, key: String, answer: Answer) {
        let answer = try await Self.call(client, .post, "/v1/keys", key: key ?? adminKey, body)
        return (answer.json?["id"]?.stringValue ?? "", answer.json?["key"]?.stringValue ?? "", answer)
    }

    @Test func tenantsAndKeysAreMadeByTheirAdminsAndASecretIsShownOnce() async throws {
        let other = TestEnvironment.uniqueName("other")
        try await app().test(.router) { client in
            let created = try await Self.call(client, .post, "/v1/tenants", key: adminKey, #"{"name":"Other Co","id":"\#(other)"}"#)
            #expect(created.status == .created && created.json?["id"]?.stringValue == other)
            #expect(try await Self.call(client, .post, "/v1/tenants", key: adminKey, #"{"name":"Other Co","id":"\#(other)"}"#).status == .conflict)

            // A tenant admin of the new tenant, made by the platform admin.
            let admin = try await makeKey(client, #"{"tenant":"\#(other)","role":"admin","name":"ops","team":"ml","tags":["a","b"],"rpm_limit":600,"max_concurrent":4,"metadata":{"owner":"ada"}}"#)
            #expect(admin.answer.status == .created)
            #expect(admin.key.hasPrefix("cdt-") && admin.answer.json?["prefix"]?.stringValue == String(admin.key.prefix(12)))
            #expect(admin.answer.json?["tenant"]?.stringValue == other && admin.answer.json?["team"] == "ml")
            #expect(admin.answer.json?["metadata"]?["owner"] == "ada")
            #expect(try await Self.works(client, admin.key))
            let read = try await Self.call(client, .get, "/v1/keys/\(admin.id)", key: admin.key)
            #expect(read.status == .ok && read.json?["key"] == nil && read.json?["rpm_limit"] == 600 && read.json?["max_concurrent"] == 4)

            // It manages its own tenant only, and no platform admins.
            #expect(try await makeKey(client, #"{"tenant":"\#(tenant)","role":"viewer"}"#, by: admin.key).answer.status == .forbidden)
            #expect(try await makeKey(client, #"{"role":"platform_admin"}"#, by: admin.key).answer.status == .forbidden)
            #expect(try await Self.call(client, .post, "/v1/tenants", key: admin.key, #"{"name":"x"}"#).status == .forbidden)
            let adminsOwn = try await Self.call(client, .get, "/v1/keys/admin-\(tenant)", key: admin.key)
            #expect(adminsOwn.status == .notFound)
            let developer = try await makeKey(client, #"{"role":"developer"}"#, by: admin.key)
            #expect(developer.answer.json?["tenant"]?.stringValue == other)
            let listed = try await Self.call(client, .get, "/v1/keys", key: admin.key)
            #expect(Set(listed.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == [admin.id, developer.id])

            // A developer manages no keys; bad fields are named.
            #expect(try await makeKey(client, #"{"role":"viewer"}"#, by: developer.key).answer.error?["code"] == "insufficient_role")
            #expect(try await makeKey(client, #"{"role":"boss"}"#, by: admin.key).answer.error?["param"] == "role")
            #expect(try await makeKey(client, #"{"role":"viewer","tpm_limit":0}"#, by: admin.key).answer.error?["param"] == "tpm_limit")
            #expect(try await makeKey(client, #"{"role":"viewer","expires_at":"soon"}"#, by: admin.key).answer.error?["param"] == "expires_at")

            // An update changes what it names; a revoked key can change no more.
            let patched = try await Self.call(client, .patch, "/v1/keys/\(developer.id)", key: admin.key, #"{"name":"ci","tags":["x"],"team":null}"#)
            #expect(patched.status == .ok && patched.json?["name"] == "ci" && patched.json?["tags"]?[0] == "x")
            #expect(try await Self.call(client, .delete, "/v1/keys/\(developer.id)", key: admin.key).json?["revoked_at"] != nil)
            #expect(try await Self.call(client, .patch, "/v1/keys/\(developer.id)", key: admin.key, #"{"name":"again"}"#).status == .conflict)

            // A key's chat defaults (once a SQL column) are set and read through the API, checked as `conduit` options.
            let withDefaults = try await makeKey(client, #"{"role":"developer","chat_defaults":{"rag":{"collection":"kb"}}}"#, by: admin.key)
            #expect(withDefaults.answer.status == .created && withDefaults.answer.json?["chat_defaults"]?["rag"]?["collection"] == "kb")
            #expect(try await makeKey(client, #"{"role":"developer","chat_defaults":{"rag":5}}"#, by: admin.key).answer.error?["param"] == "chat_defaults")
            let cleared = try await Self.call(client, .patch, "/v1/keys/\(withDefaults.id)", key: admin.key, #"{"chat_defaults":null}"#)
            #expect(cleared.status == .ok && cleared.json?["chat_defaults"] == .null)
        }
    }

    /// What schemathesis sends: text Postgres cannot store (NUL; the C client would cut a string
    /// at it, and jsonb refuses it).
    @Test func inputPostgresCannotStoreIsA400NamingTheField() async throws {
        try await app().test(.router) { client in
            let cases: [(String, String, String)] = [
                ("POST", "/v1/tenants", #"{"name":"a\u0000b"}"#), ("POST", "/v1/tenants", #"{"name":"ok","id":"x\u0000"}"#),
                ("POST", "/v1/keys", #"{"role":"viewer","name":"a\u0000"}"#), ("POST", "/v1/keys", #"{"role":"viewer","tags":["\u0000"]}"#),
                ("POST", "/v1/keys", #"{"role":"viewer","metadata":{"k":"\u0000"}}"#),
                ("POST", "/v1/keys", #"{"role":"viewer","models":["a\u0000"]}"#), ("PATCH", "/v1/keys/admin-" + tenant, #"{"metadata":{"\u0000":1}}"#),
                ("PATCH", "/v1/tenants/" + tenant, #"{"name":"\u0000"}"#),
            ]
            for (method, path, body) in cases {
                let answer = try await Self.call(client, .init(method)!, path, key: adminKey, body)
                #expect(answer.status == .badRequest, "\(method) \(path) \(body) → \(answer.status) \(String(describing: answer.json))")
            }
        }
    }

    @Test func aRevokedKeyFailsOnAnotherReplicaWithinASecond() async throws {
        let first = try await app()
        let second = try await app()
        try await first.test(.live) { one in
            try await second.test(.live) { two in
                let made = try await makeKey(one, #"{"role":"developer"}"#)
                // The second replica takes a key made on the first (it may not have polled yet).
                #expect(try await Self.works(two, made.key))
                #expect(try await Self.works(two, made.key))
                #expect(try await Self.call(one, .delete, "/v1/keys/\(made.id)", key: adminKey).status == .ok)
                // From the revocation's commit (the DELETE's answer), not from sending it: the
                // DELETE's own time under a loaded test pool is not propagation.
                let revoked = ContinuousClock.now
                #expect(try await eventually(within: .seconds(3)) { try await !Self.works(two, made.key) })
                let elapsed = ContinuousClock.now - revoked
                #expect(elapsed < .seconds(1), "revocation took \(elapsed) to reach the other replica")
            }
        }
    }

    @Test func aRotatedSecretWorksForItsGraceAndAnExpiredKeyStops() async throws {
        try await app().test(.live) { client in
            let made = try await makeKey(client, #"{"role":"developer"}"#)
            #expect(try await Self.works(client, made.key))
            let rotated = try await Self.call(client, .post, "/v1/keys/\(made.id)/rotate", key: adminKey, #"{"grace_seconds":2}"#)
            let fresh = try #require(rotated.json?["key"]?.stringValue)
            #expect(fresh != made.key && rotated.json?["previous_valid_until"] != nil)
            #expect(try await Self.works(client, fresh))
            #expect(try await Self.works(client, made.key))
            #expect(try await eventually(within: .seconds(5)) { try await !Self.works(client, made.key) })
            #expect(try await Self.works(client, fresh))

            // Whole seconds in the text: three to four seconds from now.
            let expiry = ISO8601DateFormatter().string(from: Date().addingTimeInterval(4))
            let brief = try await makeKey(client, #"{"role":"viewer","expires_at":"\#(expiry)"}"#)
            #expect(try await Self.works(client, brief.key))
            #expect(try await eventually(within: .seconds(10)) { try await !Self.works(client, brief.key) })
        }
    }

    @Test func aFloodOfMadeUpKeysAsksPostgresOnlyAFewTimesASecond() async throws {
        try await app().test(.live) { client in
            // The watcher has loaded the keys once the admin key's own answer comes back quickly.
            #expect(try await Self.works(client, adminKey))
            try await Task.sleep(for: .seconds(1))
            // Ten clients at once, 200 made-up keys: sent one after another under a full test tier
            // they once took 14 s, long enough for the budget itself to let 74 through.
            let started = ContinuousClock.now
            let flood = 200
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask { () async throws -> Void in
                        for _ in 0..<(flood / 10) {
                            let works = try await Self.works(client, APIKeyAuthenticator.generateKey())
                            #expect(!works)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = ContinuousClock.now - started
            // At most the budget's burst (5) and 5 a second after it, however slow the machine.
            let allowed = 5 + Int((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 5) + 1
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            let text = String(buffer: metrics.body)
            func count(_ result: String) -> Int {
                text.split(separator: "\n").first { $0.hasPrefix(#"gateway_api_key_store_lookups_total{result="\#(result)"}"#) }
                    .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            }
            #expect(count("unknown") <= allowed, "\(count("unknown")) asked the store in \(elapsed), at most \(allowed) allowed")
            #expect(count("refused") >= flood - allowed, "\(count("refused")) refused")
            #expect(allowed < flood / 2, "the flood took \(elapsed): too slow to show the bound")
        }
    }
}
