import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import TestSupport

/// Teams and users through the admin API over the test stack's Postgres: made, listed, changed
/// and deleted by a tenant's admin; invisible to another tenant; closed to a developer.
@Suite(.timeLimit(.minutes(2)))
struct DirectoryAPITests {
    let keys = KeysAPITests()

    @Test func aTenantsAdminKeepsItsTeamsAndUsersAndNoOneElseSeesThem() async throws {
        let other = TestEnvironment.uniqueName("dir")
        try await keys.app().test(.router) { client in
            let root = keys.adminKey
            #expect(try await KeysAPITests.call(client, .post, "/v1/tenants", key: root, #"{"name":"Dir","id":"\#(other)"}"#).status == .created)
            let admin = try await keys.makeKey(client, #"{"tenant":"\#(other)","role":"admin"}"#)
            let developer = try await keys.makeKey(client, #"{"role":"developer"}"#, by: admin.key)

            let team = try await KeysAPITests.call(client, .post, "/v1/teams", key: admin.key, #"{"name":"Machine Learning","metadata":{"cost_center":"42"}}"#)
            #expect(team.status == .created && team.json?["id"] == "machine-learning" && team.json?["tenant"]?.stringValue == other)
            #expect(try await KeysAPITests.call(client, .post, "/v1/teams", key: admin.key, #"{"name":"Machine Learning"}"#).status == .conflict)
            let ada = try await KeysAPITests.call(client, .post, "/v1/users", key: admin.key, #"{"id":"ada","name":"Ada","email":"ada@example.com","team":"machine-learning"}"#)
            #expect(ada.status == .created && ada.json?["team"] == "machine-learning")
            #expect(try await KeysAPITests.call(client, .post, "/v1/users", key: admin.key, #"{"id":"bob","team":"nowhere"}"#).error?["param"] == "team")
            #expect(try await KeysAPITests.call(client, .post, "/v1/users", key: admin.key, #"{"id":"bob","email":"no-at"}"#).error?["param"] == "email")
            #expect(try await KeysAPITests.call(client, .post, "/v1/users", key: admin.key, #"{"id":"bob"}"#).status == .created)

            let members = try await KeysAPITests.call(client, .get, "/v1/users?team=machine-learning", key: admin.key)
            #expect(members.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["ada"])
            #expect(try await KeysAPITests.call(client, .get, "/v1/users?limit=1", key: admin.key).json?["next_cursor"] == "ada")
            // A team with users stays; moved away, it can go.
            #expect(try await KeysAPITests.call(client, .delete, "/v1/teams/machine-learning", key: admin.key).error?["code"] == "team_in_use")
            let moved = try await KeysAPITests.call(client, .patch, "/v1/users/ada", key: admin.key, #"{"team":null,"name":"Ada L."}"#)
            #expect(moved.status == .ok && moved.json?["team"] == .null && moved.json?["name"] == "Ada L.")
            #expect(try await KeysAPITests.call(client, .patch, "/v1/users/ada", key: admin.key, #"{"id":"eve"}"#).error?["param"] == "id")
            #expect(try await KeysAPITests.call(client, .delete, "/v1/teams/machine-learning", key: admin.key).status == .ok)
            #expect(try await KeysAPITests.call(client, .get, "/v1/teams/machine-learning", key: admin.key).status == .notFound)

            // Another tenant's admin sees none of it and cannot name the tenant; a developer manages nothing.
            #expect(try await KeysAPITests.call(client, .get, "/v1/users/ada", key: root).status == .notFound)
            #expect(try await KeysAPITests.call(client, .get, "/v1/users/ada?tenant=\(other)", key: root).json?["name"] == "Ada L.")
            let otherAdmin = try await keys.makeKey(client, #"{"role":"admin"}"#)
            #expect(try await KeysAPITests.call(client, .get, "/v1/users?tenant=\(other)", key: otherAdmin.key).status == .forbidden)
            #expect(try await KeysAPITests.call(client, .get, "/v1/users", key: otherAdmin.key).json?["data"]?.arrayValue?.contains { $0["id"] == "ada" } == false)
            #expect(try await KeysAPITests.call(client, .post, "/v1/teams", key: developer.key, #"{"name":"x"}"#).status == .forbidden)
            #expect(try await KeysAPITests.call(client, .delete, "/v1/users/bob", key: admin.key).json?["deleted"] == true)
        }
    }
}
