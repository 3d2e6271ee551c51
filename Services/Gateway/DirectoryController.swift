import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Postgres

/// A tenant's teams and users — the names its keys, budgets and usage use — managed by its
/// admins (`manageKeys`; a platform admin names another tenant with `?tenant=`):
/// `POST/GET /v1/teams`, `GET/PATCH/DELETE /v1/teams/{id}`, `POST/GET /v1/users` (`?team=`),
/// `GET/PATCH/DELETE /v1/users/{id}`. Another tenant's team or user is a 404. A user's `team`
/// must be a team of the tenant; a team with users cannot be deleted (409 `team_in_use`).
struct DirectoryController: Sendable {
    let store: PostgresDirectory

    struct Team: Sendable, Equatable {
        var tenant: String
        var id: String
        var name: String
        var metadata: String?
        var createdAt: Date
    }

    struct User: Sendable, Equatable {
        var tenant: String
        var id: String
        var name: String?
        var email: String?
        var team: String?
        var metadata: String?
        var createdAt: Date
    }

    struct TeamView: Encodable {
        var team: Team
        enum CodingKeys: String, CodingKey { case object, id, tenant, name, metadata, createdAt = "created_at" }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode("team", forKey: .object)
            try container.encode(team.id, forKey: .id)
            try container.encode(team.tenant, forKey: .tenant)
            try container.encode(team.name, forKey: .name)
            try container.encode(team.metadata.flatMap { JSONValue.parse(Data($0.utf8)) }, forKey: .metadata)
            try container.encode(team.createdAt, forKey: .createdAt)
        }
    }

    struct UserView: Encodable {
        var user: User
        enum CodingKeys: String, CodingKey { case object, id, tenant, name, email, team, metadata, createdAt = "created_at" }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode("user", forKey: .object)
            try container.encode(user.id, forKey: .id)
            try container.encode(user.tenant, forKey: .tenant)
            try container.encode(user.name, forKey: .name)
            try container.encode(user.email, forKey: .email)
            try container.encode(user.team, forKey: .team)
            try container.encode(user.metadata.flatMap { JSONValue.parse(Data($0.utf8)) }, forKey: .metadata)
            try container.encode(user.createdAt, forKey: .createdAt)
        }
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/teams") { request, context in
            let tenant = try await tenant(request, context)
            let body = try await KeysController.object(request, context)
            guard let name = try Self.text(body, "name"), let name else { throw APIError.invalidRequest("'name' is required: 1 to 200 bytes.", param: "name") }
            let id = try Self.identifier(body["id"]) ?? KeysController.slug(name)
            guard Identifier.tenant.isValid(id) else {
                throw APIError.invalidRequest("A team id cannot be made from this name; give an 'id' (\(Identifier.tenant.rule)).", param: "id")
            }
            var team = Team(tenant: tenant, id: id, name: name, metadata: nil, createdAt: Date())
            if let metadata = try Self.metadata(body) { team.metadata = metadata }
            guard try await store.createTeam(team) else {
                throw APIError(status: .conflict, type: .invalidRequest, message: "A team '\(id)' exists.", param: "id", code: "team_exists")
            }
            return try KeysController.json(TeamView(team: team), status: .created)
        }
        router.get("/v1/teams") { request, context in
            let tenant = try await tenant(request, context)
            let (limit, cursor) = Self.page(request)
            let teams = try await store.teams(tenant: tenant, after: cursor, limit: limit + 1)
            return try KeysController.json(KeysController.List(
                data: teams.prefix(limit).map { TeamView(team: $0) }, nextCursor: teams.count > limit ? teams[limit - 1].id : nil))
        }
        router.get("/v1/teams/:id") { request, context in
            try KeysController.json(TeamView(team: try await team(request, context)))
        }
        router.patch("/v1/teams/:id") { request, context in
            var team = try await team(request, context)
            let body = try await KeysController.object(request, context)
            try Self.refuseChanging(["id", "tenant", "created_at"], in: body)
            if let name = try Self.text(body, "name") {
                guard let name else { throw APIError.invalidRequest("'name' cannot be null.", param: "name") }
                team.name = name
            }
            if let metadata = try Self.metadata(body) { team.metadata = metadata }
            try await store.updateTeam(team)
            return try KeysController.json(TeamView(team: team))
        }
        router.delete("/v1/teams/:id") { request, context in
            let team = try await team(request, context)
            guard try await store.deleteTeam(team) else {
                throw APIError(status: .conflict, type: .invalidRequest, message: "The team '\(team.id)' has users; move or delete them first.", code: "team_in_use")
            }
            return try KeysController.json(["object": JSONValue.string("team.deleted"), "id": .string(team.id), "deleted": true])
        }

        router.post("/v1/users") { request, context in
            let tenant = try await tenant(request, context)
            let body = try await KeysController.object(request, context)
            guard let id = try Self.identifier(body["id"]) else {
                throw APIError.invalidRequest("'id' is required: \(Identifier.tenant.rule).", param: "id")
            }
            var user = User(tenant: tenant, id: id, name: nil, email: nil, team: nil, metadata: nil, createdAt: Date())
            try await apply(body, to: &user)
            guard try await store.createUser(user) else {
                throw APIError(status: .conflict, type: .invalidRequest, message: "A user '\(id)' exists.", param: "id", code: "user_exists")
            }
            return try KeysController.json(UserView(user: user), status: .created)
        }
        router.get("/v1/users") { request, context in
            let tenant = try await tenant(request, context)
            let (limit, cursor) = Self.page(request)
            let users = try await store.users(tenant: tenant, team: request.uri.queryParameters["team"].map(String.init), after: cursor, limit: limit + 1)
            return try KeysController.json(KeysController.List(
                data: users.prefix(limit).map { UserView(user: $0) }, nextCursor: users.count > limit ? users[limit - 1].id : nil))
        }
        router.get("/v1/users/:id") { request, context in
            try KeysController.json(UserView(user: try await user(request, context)))
        }
        router.patch("/v1/users/:id") { request, context in
            var user = try await user(request, context)
            let body = try await KeysController.object(request, context)
            try Self.refuseChanging(["id", "tenant", "created_at"], in: body)
            try await apply(body, to: &user)
            try await store.updateUser(user)
            return try KeysController.json(UserView(user: user))
        }
        router.delete("/v1/users/:id") { request, context in
            let user = try await user(request, context)
            try await store.deleteUser(user)
            return try KeysController.json(["object": JSONValue.string("user.deleted"), "id": .string(user.id), "deleted": true])
        }
    }

    /// The tenant a request acts in: the caller's, or for a platform admin the one `?tenant=` names.
    private func tenant(_ request: Request, _ context: ConduitRequestContext) async throws -> String {
        let caller = try context.require(.manageKeys, "Only a tenant admin manages teams and users.")
        guard let named = request.uri.queryParameters["tenant"].map(String.init), named != caller.tenant else { return caller.tenant }
        guard caller.can(.manageTenants) else {
            throw APIError(status: .forbidden, type: .permission, message: "A tenant admin manages their own tenant's teams and users only.",
                           param: "tenant", code: "insufficient_role")
        }
        guard Identifier.tenant.isValid(named), try await store.tenantExists(named) else { throw APIError.notFound("No tenant '\(named.prefix(100))'.") }
        return named
    }

    private func team(_ request: Request, _ context: ConduitRequestContext) async throws -> Team {
        let tenant = try await tenant(request, context)
        let id = try context.pathParameter("id")
        guard let team = try await store.team(tenant: tenant, id: id) else { throw APIError.notFound("No team '\(id.prefix(100))'.") }
        return team
    }

    private func user(_ request: Request, _ context: ConduitRequestContext) async throws -> User {
        let tenant = try await tenant(request, context)
        let id = try context.pathParameter("id")
        guard let user = try await store.user(tenant: tenant, id: id) else { throw APIError.notFound("No user '\(id.prefix(100))'.") }
        return user
    }

    private func apply(_ body: [String: JSONValue], to user: inout User) async throws {
        if let name = try Self.text(body, "name") { user.name = name }
        if let email = try Self.text(body, "email") {
            guard email.map({ $0.contains("@") }) ?? true else { throw APIError.invalidRequest("'email' must be an address or null.", param: "email") }
            user.email = email
        }
        if let team = try Self.text(body, "team") {
            if let team, try await store.team(tenant: user.tenant, id: team) == nil {
                throw APIError.invalidRequest("No team '\(team)' in this tenant.", param: "team")
            }
            user.team = team
        }
        if let metadata = try Self.metadata(body) { user.metadata = metadata }
    }

    static func page(_ request: Request) -> (limit: Int, cursor: String?) {
        let query = request.uri.queryParameters
        return (min(max(Int(query["limit"].map(String.init) ?? "") ?? 100, 1), 1000), query["cursor"].map(String.init))
    }

    static func refuseChanging(_ fields: [String], in body: [String: JSONValue]) throws {
        for field in fields where body[field] != nil { throw APIError.invalidRequest("'\(field)' cannot change.", param: field) }
    }

    /// A string field: absent (nil), null (.some(nil)), or 1 to 200 bytes on one line without NUL.
    static func text(_ body: [String: JSONValue], _ field: String) throws -> String?? {
        guard let value = body[field] else { return .none }
        if case .null = value { return .some(nil) }
        guard let string = value.stringValue, !string.isEmpty, string.utf8.count <= 200, !string.contains(where: \.isNewline), !string.contains("\0") else {
            throw APIError.invalidRequest("'\(field)' must be a string of 1 to 200 bytes on one line, or null.", param: field)
        }
        return .some(string)
    }

    static func identifier(_ value: JSONValue?) throws -> String? {
        guard let value else { return nil }
        guard let id = value.stringValue, Identifier.tenant.isValid(id) else { throw APIError.invalidRequest("'id' must be \(Identifier.tenant.rule).", param: "id") }
        return id
    }

    /// `metadata`: nil when absent; `.some(nil)` for null.
    static func metadata(_ body: [String: JSONValue]) throws -> String?? { try KeysController.objectText(body, "metadata") }
}

/// Teams and users in `gateway.teams` and `gateway.users`.
struct PostgresDirectory: Sendable {
    let postgres: PostgresClient

    func tenantExists(_ id: String) async throws -> Bool {
        try await !postgres.query("SELECT 1 FROM gateway.tenants WHERE id = $1", id).isEmpty
    }

    func createTeam(_ team: DirectoryController.Team) async throws -> Bool {
        try await !postgres.query("""
            INSERT INTO gateway.teams (tenant_id, id, name, metadata, created_at) VALUES ($1, $2, $3, $4::jsonb, $5)
            ON CONFLICT DO NOTHING RETURNING id
            """, team.tenant, team.id, team.name, team.metadata, team.createdAt).isEmpty
    }

    func teams(tenant: String, after: String?, limit: Int) async throws -> [DirectoryController.Team] {
        try await postgres.query("""
            SELECT tenant_id, id, name, metadata::text, created_at FROM gateway.teams WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3
            """, tenant, after ?? "", limit).map(Self.team)
    }

    func team(tenant: String, id: String) async throws -> DirectoryController.Team? {
        try await postgres.query("SELECT tenant_id, id, name, metadata::text, created_at FROM gateway.teams WHERE tenant_id = $1 AND id = $2", tenant, id)
            .first.map(Self.team)
    }

    func updateTeam(_ team: DirectoryController.Team) async throws {
        try await postgres.query("UPDATE gateway.teams SET name = $3, metadata = $4::jsonb WHERE tenant_id = $1 AND id = $2",
                                 team.tenant, team.id, team.name, team.metadata)
    }

    /// False when users still belong to the team.
    func deleteTeam(_ team: DirectoryController.Team) async throws -> Bool {
        try await postgres.withTransaction { session in
            let members = try await session.query("SELECT 1 FROM gateway.users WHERE tenant_id = $1 AND team = $2 LIMIT 1 FOR UPDATE", team.tenant, team.id)
            guard members.isEmpty else { return false }
            try await session.query("DELETE FROM gateway.teams WHERE tenant_id = $1 AND id = $2", team.tenant, team.id)
            return true
        }
    }

    func createUser(_ user: DirectoryController.User) async throws -> Bool {
        try await !postgres.query("""
            INSERT INTO gateway.users (tenant_id, id, name, email, team, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
            ON CONFLICT DO NOTHING RETURNING id
            """, user.tenant, user.id, user.name, user.email, user.team, user.metadata, user.createdAt).isEmpty
    }

    func users(tenant: String, team: String?, after: String?, limit: Int) async throws -> [DirectoryController.User] {
        try await postgres.query("""
            SELECT tenant_id, id, name, email, team, metadata::text, created_at FROM gateway.users
            WHERE tenant_id = $1 AND ($2::text IS NULL OR team = $2) AND id > $3 ORDER BY id LIMIT $4
            """, tenant, team, after ?? "", limit).map(Self.user)
    }

    func user(tenant: String, id: String) async throws -> DirectoryController.User? {
        try await postgres.query("""
            SELECT tenant_id, id, name, email, team, metadata::text, created_at FROM gateway.users WHERE tenant_id = $1 AND id = $2
            """, tenant, id).first.map(Self.user)
    }

    func updateUser(_ user: DirectoryController.User) async throws {
        try await postgres.query("UPDATE gateway.users SET name = $3, email = $4, team = $5, metadata = $6::jsonb WHERE tenant_id = $1 AND id = $2",
                                 user.tenant, user.id, user.name, user.email, user.team, user.metadata)
    }

    func deleteUser(_ user: DirectoryController.User) async throws {
        try await postgres.query("DELETE FROM gateway.users WHERE tenant_id = $1 AND id = $2", user.tenant, user.id)
    }

    static func team(_ row: PostgresRow) throws -> DirectoryController.Team {
        .init(tenant: try row.decode(at: 0), id: try row.decode(at: 1), name: try row.decode(at: 2), metadata: try row.decode(at: 3), createdAt: try row.decode(at: 4))
    }

    static func user(_ row: PostgresRow) throws -> DirectoryController.User {
        .init(tenant: try row.decode(at: 0), id: try row.decode(at: 1), name: try row.decode(at: 2), email: try row.decode(at: 3),
              team: try row.decode(at: 4), metadata: try row.decode(at: 5), createdAt: try row.decode(at: 6))
    }
}
