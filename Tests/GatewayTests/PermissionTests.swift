import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TestSupport

/// Every public route checks the key's role (the table in `Role`) before anything is forwarded.
@Suite(.timeLimit(.minutes(1)))
struct PermissionTests {
    struct Call {
        var method: HTTPRequest.Method
        var uri: String
        var body: String?
        var permission: Permission
    }

    static let calls: [Call] = [
        .init(method: .post, uri: "/v1/chat/completions", body: #"{"model":"m","messages":[]}"#, permission: .infer),
        .init(method: .get, uri: "/v1/models", permission: .infer),
        .init(method: .get, uri: "/v1/models/m", permission: .infer),
        .init(method: .post, uri: "/v1/embeddings", body: #"{"model":"m","input":"x"}"#, permission: .infer),
        .init(method: .post, uri: "/v1/search", body: #"{"collection":"c","query":"x"}"#, permission: .search),
        .init(method: .get, uri: "/v1/sessions/s1", permission: .writeDocuments),
        .init(method: .delete, uri: "/v1/sessions/s1", permission: .writeDocuments),
        .init(method: .delete, uri: "/v1/cache", permission: .writeDocuments),
        .init(method: .post, uri: "/v1/documents", body: #"{"collection":"c","doc_id":"d","text":"x"}"#, permission: .writeDocuments),
        .init(method: .delete, uri: "/v1/documents/c/d", permission: .writeDocuments),
        .init(method: .get, uri: "/v1/usage", permission: .readUsage),
        .init(method: .get, uri: "/v1/budgets", permission: .readUsage),
        .init(method: .get, uri: "/v1/budgets/b1", permission: .readUsage),
        .init(method: .post, uri: "/v1/budgets", body: #"{"scope":{"tenant":true},"period":"day","limit_usd":1}"#, permission: .manageBudgets),
        .init(method: .patch, uri: "/v1/budgets/b1", body: #"{"limit_usd":2}"#, permission: .manageBudgets),
        .init(method: .delete, uri: "/v1/budgets/b1", permission: .manageBudgets),
    ]

    @Test(arguments: [Role.admin, .developer, .viewer, .service])
    func everyRouteAnswersByTheRolesPermissionTable(role: Role) async throws {
        let harness = GatewayHarness()
        let key = APIKeyAuthenticator.generateKey()
        harness.keys.install(hash: APIKeyAuthenticator.hash(key), identity: CallerIdentity(tenant: "acme", keyID: "key-\(role.rawValue)", roles: [role.rawValue]))
        try await harness.app().test(.router) { client in
            for call in Self.calls {
                var headers: HTTPFields = [.authorization: "Bearer \(key)", .contentType: "application/json"]
                headers[.accept] = "application/json"
                let response = try await client.execute(uri: call.uri, method: call.method, headers: headers, body: call.body.map { ByteBuffer(string: $0) })
                let error = JSONValue.parse(Array(response.body.readableBytesView))?["error"]
                if role.allows(call.permission) {
                    #expect(response.status != .forbidden, "\(role) \(call.method) \(call.uri)")
                } else {
                    #expect(response.status == .forbidden, "\(role) \(call.method) \(call.uri)")
                    #expect(error?["type"] == "permission_error" && error?["code"] == "insufficient_role")
                }
            }
        }
        // Nothing refused was forwarded or published.
        let forwarded = Set(harness.services.received.map { "\($0.method) \($0.path)" })
        let expected = Self.calls.filter { role.allows($0.permission) && !$0.uri.hasPrefix("/v1/documents") }.count
        #expect(harness.services.received.count == expected, "\(forwarded)")
    }

    @Test func theTableIsWhatTheREADMESays() {
        #expect(Role.allCases.filter { $0.allows(.manageTenants) } == [.platformAdmin])
        #expect(Role.allCases.filter { $0.allows(.manageKeys) } == [.platformAdmin, .admin])
        #expect(Role.allCases.filter { $0.allows(.infer) } == [.platformAdmin, .admin, .developer, .service])
        #expect(Role.allCases.filter { $0.allows(.readUsage) } == [.platformAdmin, .admin, .developer, .viewer])
        #expect(!CallerIdentity(tenant: "t", keyID: "k", roles: ["superuser"]).can(.search))
    }
}
