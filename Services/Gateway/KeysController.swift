import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird

/// The admin API for tenants and keys (`manageTenants`: platform admins; `manageKeys`: tenant
/// admins, in their own tenant):
/// `POST/GET /v1/tenants`; `POST/GET /v1/keys`, `GET/PATCH/DELETE /v1/keys/{id}`,
/// `POST /v1/keys/{id}/rotate`. A new or rotated key's secret is in that answer only; the store
/// keeps its SHA-256 and a visible prefix. Another tenant's key is a 404, as if it did not exist.
struct KeysController: Sendable {
    let store: any KeyAdministration
    /// The longest grace a rotation may give the old secret.
    var maxGrace: TimeInterval = 7 * 86_400

    /// A key as the API shows it, and its secret in the answer that made it.
    struct KeyView: Encodable {
        var key: ManagedKey
        var secret: String?

        init(_ key: ManagedKey, secret: String? = nil) {
            self.key = key
            self.secret = secret
        }

        enum Extra: String, CodingKey {
            case object, key
        }

        func encode(to encoder: any Encoder) throws {
            try key.encode(to: encoder)
            var extra = encoder.container(keyedBy: Extra.self)
            try extra.encode("api_key", forKey: .object)
            try extra.encodeIfPresent(secret, forKey: .key)
        }
    }

    struct TenantView: Encodable {
        var tenant: Tenant

        init(_ tenant: Tenant) { self.tenant = tenant }

        enum CodingKeys: String, CodingKey {
            case object, id, name
            case createdAt = "created_at"
            case rpmLimit = "rpm_limit"
            case tpmLimit = "tpm_limit"
            case maxConcurrent = "max_concurrent"
            case modelLimits = "model_limits"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode("tenant", forKey: .object)
            try container.encode(tenant.id, forKey: .id)
            try container.encode(tenant.name, forKey: .name)
            try container.encode(tenant.createdAt, forKey: .createdAt)
            try container.encode(tenant.limits.rpm, forKey: .rpmLimit)
            try container.encode(tenant.limits.tpm, forKey: .tpmLimit)
            try container.encode(tenant.limits.maxConcurrent, forKey: .maxConcurrent)
            try container.encode(tenant.modelLimits, forKey: .modelLimits)
        }
    }

    struct List<Item: Encodable>: Encodable {
        var object = "list"
        var data: [Item]
        var nextCursor: String?

        enum CodingKeys: String, CodingKey {
            case object, data
            case nextCursor = "next_cursor"
        }
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/tenants") { request, context in try await createTenant(request, context) }
        router.get("/v1/tenants") { _, context in
            try context.require(.manageTenants, "Only a platform admin lists tenants.")
            return try Self.json(List(data: try await store.tenants().map(TenantView.init)))
        }
        router.get("/v1/tenants/:id") { _, context in
            // A tenant admin reads their own tenant (its limits); a platform admin any.
            let caller = try context.require(.manageKeys, "Only a tenant admin reads a tenant.")
            let id = try context.pathParameter("id")
            guard id == caller.tenant || caller.can(.manageTenants), let tenant = try await store.tenant(id) else {
                throw APIError.notFound("No tenant '\(id)'.")
            }
            return try Self.json(TenantView(tenant))
        }
        router.patch("/v1/tenants/:id") { request, context in try await updateTenant(request, context) }
        router.post("/v1/keys") { request, context in try await createKey(request, context) }
        router.get("/v1/keys") { request, context in try await listKeys(request, context) }
        router.get("/v1/keys/:id") { _, context in try Self.json(KeyView(try await ownKey(context))) }
        router.patch("/v1/keys/:id") { request, context in try await updateKey(request, context) }
        router.delete("/v1/keys/:id") { _, context in
            let key = try await ownKey(context)
            guard let revoked = try await store.revokeKey(key.id) else { throw Self.noKey(key.id) }
            return try Self.json(KeyView(revoked))
        }
        router.post("/v1/keys/:id/rotate") { request, context in try await rotateKey(request, context) }
    }

    func createTenant(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        try context.require(.manageTenants, "Only a platform admin creates tenants.")
        let body = try await Self.object(request, context)
        guard let name = body["name"]?.stringValue, !name.isEmpty, name.utf8.count <= 200, !name.contains("\0") else {
            throw APIError.invalidRequest("'name' is required: 1 to 200 bytes, without NUL.", param: "name")
        }
        let id = try body["id"].map { value -> String in
            guard let id = value.stringValue, Identifier.tenant.isValid(id) else {
                throw APIError.invalidRequest("'id' must be \(Identifier.tenant.rule).", param: "id")
            }
            return id
        } ?? Self.slug(name)
        guard Identifier.tenant.isValid(id) else {
            throw APIError.invalidRequest("A tenant id cannot be made from this name; give an 'id' (\(Identifier.tenant.rule)).", param: "id")
        }
        var wanted = Tenant(id: id, name: name, createdAt: Date())
        try Self.applyLimits(body, to: &wanted.limits, models: &wanted.modelLimits)
        guard var tenant = try await store.createTenant(id: id, name: name) else {
            throw APIError(status: .conflict, type: .invalidRequest, message: "A tenant '\(id)' exists.", param: "id", code: "tenant_exists")
        }
        if wanted.limits != tenant.limits || wanted.modelLimits != tenant.modelLimits {
            tenant.limits = wanted.limits
            tenant.modelLimits = wanted.modelLimits
            tenant = try await store.updateTenant(tenant) ?? tenant
        }
        return try Self.json(TenantView(tenant), status: .created)
    }

    /// `PATCH /v1/tenants/{id}`: a platform admin renames a tenant or sets its limits.
    func updateTenant(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        try context.require(.manageTenants, "Only a platform admin changes a tenant.")
        let id = try context.pathParameter("id")
        guard var tenant = try await store.tenant(id) else { throw APIError.notFound("No tenant '\(id)'.") }
        let body = try await Self.object(request, context)
        for field in ["id", "created_at"] where body[field] != nil {
            throw APIError.invalidRequest("'\(field)' of a tenant cannot change.", param: field)
        }
        if let value = body["name"] {
            guard let name = value.stringValue, !name.isEmpty, name.utf8.count <= 200, !name.contains("\0") else {
                throw APIError.invalidRequest("'name' must be 1 to 200 bytes, without NUL.", param: "name")
            }
            tenant.name = name
        }
        try Self.applyLimits(body, to: &tenant.limits, models: &tenant.modelLimits)
        guard let updated = try await store.updateTenant(tenant) else { throw APIError.notFound("No tenant '\(id)'.") }
        return try Self.json(TenantView(updated))
    }

    func createKey(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.manageKeys, "Only a tenant admin manages keys.")
        let body = try await Self.object(request, context)
        let tenant = try await targetTenant(body["tenant"], caller: caller)
        guard let roleName = body["role"]?.stringValue, let role = Role(rawValue: roleName) else {
            throw APIError.invalidRequest("'role' is required: one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")).", param: "role")
        }
        guard role != .platformAdmin || caller.can(.manageTenants) else {
            throw APIError(status: .forbidden, type: .permission, message: "Only a platform admin makes platform_admin keys.", param: "role", code: "insufficient_role")
        }
        let secret = APIKeyAuthenticator.generateKey()
        var key = ManagedKey(
            id: "key_" + Self.randomHex(12), tenant: tenant, role: role, name: nil, prefix: APIKeyAuthenticator.prefix(of: secret),
            team: nil, user: nil, tags: [], expiresAt: nil, metadata: nil, createdAt: Date(), revokedAt: nil, previousValidUntil: nil)
        try Self.apply(body, to: &key)
        try await store.createKey(key, hash: APIKeyAuthenticator.hash(secret))
        return try Self.json(KeyView(key, secret: secret), status: .created)
    }

    func listKeys(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.manageKeys, "Only a tenant admin manages keys.")
        let query = request.uri.queryParameters
        var tenant: String? = caller.tenant
        if let named = query["tenant"].map(String.init) {
            tenant = try await targetTenant(.string(named), caller: caller)
        } else if caller.can(.manageTenants), query["all"] == "true" {
            tenant = nil
        }
        let limit = min(max(Int(query["limit"].map(String.init) ?? "") ?? 100, 1), 1000)
        let page = try await store.keys(tenant: tenant, after: query["cursor"].map(String.init), limit: limit + 1)
        return try Self.json(List(data: page.prefix(limit).map { KeyView($0) }, nextCursor: page.count > limit ? page[limit - 1].id : nil))
    }

    func updateKey(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        var key = try await ownKey(context)
        let caller = try context.caller()
        let body = try await Self.object(request, context)
        for field in ["tenant", "id", "key", "prefix"] where body[field] != nil {
            throw APIError.invalidRequest("'\(field)' of a key cannot change.", param: field)
        }
        if let value = body["role"] {
            guard let name = value.stringValue, let role = Role(rawValue: name) else {
                throw APIError.invalidRequest("'role' must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")).", param: "role")
            }
            guard role != .platformAdmin || caller.can(.manageTenants) else {
                throw APIError(status: .forbidden, type: .permission, message: "Only a platform admin makes platform_admin keys.", param: "role", code: "insufficient_role")
            }
            key.role = role
        }
        try Self.apply(body, to: &key)
        guard let updated = try await store.updateKey(key) else {
            throw APIError(status: .conflict, type: .invalidRequest, message: "The key '\(key.id)' is revoked.", code: "key_revoked")
        }
        return try Self.json(KeyView(updated))
    }

    func rotateKey(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let key = try await ownKey(context)
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        var grace: TimeInterval = 0
        if buffer.readableBytes > 0 {
            guard let body = JSONValue.parse(Data(buffer.readableBytesView)), case .object = body else {
                throw APIError.invalidRequest("The body must be a JSON object.")
            }
            if let value = body["grace_seconds"] {
                guard case .number(let seconds) = value, seconds >= 0, seconds <= maxGrace else {
                    throw APIError.invalidRequest("'grace_seconds' must be 0 to \(Int(maxGrace)).", param: "grace_seconds")
                }
                grace = seconds
            }
        }
        let secret = APIKeyAuthenticator.generateKey()
        guard let rotated = try await store.rotateKey(
            key.id, hash: APIKeyAuthenticator.hash(secret), prefix: APIKeyAuthenticator.prefix(of: secret), graceUntil: Date().addingTimeInterval(grace)) else {
            throw APIError(status: .conflict, type: .invalidRequest, message: "The key '\(key.id)' is revoked.", code: "key_revoked")
        }
        return try Self.json(KeyView(rotated, secret: secret))
    }

    /// The key named in the path, when the caller may manage it: its own tenant's, or any for a
    /// platform admin. Anything else is a 404.
    private func ownKey(_ context: ConduitRequestContext) async throws -> ManagedKey {
        let caller = try context.require(.manageKeys, "Only a tenant admin manages keys.")
        let id = try context.pathParameter("id")
        guard let key = try await store.key(id), key.tenant == caller.tenant || caller.can(.manageTenants) else { throw Self.noKey(id) }
        return key
    }

    /// The tenant a request names: a tenant admin may name only their own.
    private func targetTenant(_ value: JSONValue?, caller: CallerIdentity) async throws -> String {
        guard let value else { return caller.tenant }
        guard let tenant = value.stringValue, Identifier.tenant.isValid(tenant) else {
            throw APIError.invalidRequest("'tenant' must be \(Identifier.tenant.rule).", param: "tenant")
        }
        if tenant == caller.tenant { return tenant }
        guard caller.can(.manageTenants) else {
            throw APIError(status: .forbidden, type: .permission, message: "A tenant admin manages keys of their own tenant only.", param: "tenant", code: "insufficient_role")
        }
        guard try await store.tenant(tenant) != nil else { throw APIError.notFound("No tenant '\(tenant)'.") }
        return tenant
    }

    /// The fields a key's creator or admin may set.
    static func apply(_ body: [String: JSONValue], to key: inout ManagedKey) throws {
        func text(_ field: String, max: Int = 200) throws -> String?? {
            guard let value = body[field] else { return .none }
            if case .null = value { return .some(nil) }
            guard let string = value.stringValue, !string.isEmpty, string.utf8.count <= max, !string.contains(where: \.isNewline), !string.contains("\0") else {
                throw APIError.invalidRequest("'\(field)' must be a string of 1 to \(max) bytes on one line, or null.", param: field)
            }
            return .some(string)
        }
        if let name = try text("name") { key.name = name }
        if let team = try text("team") { key.team = team }
        if let user = try text("user") { key.user = user }
        if let value = body["tags"] {
            guard case .array(let items) = value, items.count <= 50,
                  case let tags = items.compactMap(\.stringValue), tags.count == items.count,
                  tags.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 100 && !$0.contains(",") && !$0.contains(where: \.isNewline) && !$0.contains("\0") }) else {
                throw APIError.invalidRequest("'tags' must be at most 50 strings of 1 to 100 bytes, without commas.", param: "tags")
            }
            key.tags = tags
        }
        if let value = body["expires_at"] {
            if case .null = value {
                key.expiresAt = nil
            } else {
                guard let text = value.stringValue, let date = ISO8601DateFormatter().date(from: text) else {
                    throw APIError.invalidRequest("'expires_at' must be an ISO 8601 time (2027-01-01T00:00:00Z) or null.", param: "expires_at")
                }
                key.expiresAt = date
            }
        }
        try applyLimits(body, to: &key.limits, models: &key.modelLimits)
        if let value = body["models"] {
            switch value {
            case .null: key.models = nil
            case .array(let items):
                let models = items.compactMap(\.stringValue)
                guard models.count == items.count, models.count <= 1000, models.allSatisfy(isModelName) else {
                    throw APIError.invalidRequest("'models' must be a list of at most 1000 model names (1 to 200 bytes, no commas), or null for every model.", param: "models")
                }
                key.models = Array(Set(models)).sorted()
            default:
                throw APIError.invalidRequest("'models' must be a list of model names, or null for every model.", param: "models")
            }
        }
        if let text = try objectText(body, "chat_defaults") {
            guard text.map({ (try? JSONDecoder().decode(ConduitOptions.self, from: Data($0.utf8))) != nil }) ?? true else {
                throw APIError.invalidRequest("'chat_defaults' must be a chat request's `conduit` object (e.g. {\"rag\": {\"collection\": \"kb\"}}), or null.", param: "chat_defaults")
            }
            key.chatDefaults = text
        }
        if let text = try objectText(body, "metadata") { key.metadata = text }
    }

    /// A JSON-object field as the text Postgres stores: absent (nil), null (`.some(nil)`), or an
    /// object of at most 16 KiB without the NUL character (which jsonb cannot hold).
    static func objectText(_ body: [String: JSONValue], _ field: String) throws -> String?? {
        guard let value = body[field] else { return .none }
        switch value {
        case .null: return .some(nil)
        case .object:
            let data = try JSONEncoder().encode(value)
            guard data.count <= 16_384, data.range(of: Data(#"\u0000"#.utf8)) == nil else {
                throw APIError.invalidRequest("'\(field)' is at most 16 KiB of JSON, without the NUL character.", param: field)
            }
            return .some(String(decoding: data, as: UTF8.self))
        default: throw APIError.invalidRequest("'\(field)' must be a JSON object or null.", param: field)
        }
    }

    /// `rpm_limit`, `tpm_limit`, `max_concurrent` (each a whole number or null) and `model_limits`
    /// (model → `rpm_limit` / `tpm_limit`, or null) of a key or a tenant.
    static func applyLimits(_ body: [String: JSONValue], to limits: inout RateLimits, models: inout [String: RateLimits]) throws {
        func whole(_ value: JSONValue?, _ field: String, max: Double, _ what: String) throws -> Int?? {
            guard let value else { return .none }
            if case .null = value { return .some(nil) }
            guard case .number(let number) = value, number >= 1, number <= max, number.rounded() == number else {
                throw APIError.invalidRequest("'\(field)' must be a whole number of \(what), 1 to \(Int(max)), or null.", param: field)
            }
            return .some(Int(number))
        }
        if let rpm = try whole(body["rpm_limit"], "rpm_limit", max: 10_000_000, "requests per minute") { limits.rpm = rpm }
        if let tpm = try whole(body["tpm_limit"], "tpm_limit", max: 1_000_000_000, "tokens per minute") { limits.tpm = tpm }
        if let concurrent = try whole(body["max_concurrent"], "max_concurrent", max: 100_000, "requests in flight") { limits.maxConcurrent = concurrent }
        guard let value = body["model_limits"] else { return }
        if case .null = value {
            models = [:]
            return
        }
        guard case .object(let entries) = value, entries.count <= 1000 else {
            throw APIError.invalidRequest("'model_limits' must be an object of at most 1000 models, each {\"rpm_limit\", \"tpm_limit\"}, or null.", param: "model_limits")
        }
        var parsed: [String: RateLimits] = [:]
        for (model, entry) in entries {
            guard isModelName(model), case .object(let fields) = entry, Set(fields.keys).isSubset(of: ["rpm_limit", "tpm_limit"]) else {
                throw APIError.invalidRequest("'model_limits' must map a model name to {\"rpm_limit\", \"tpm_limit\"} (\(model.prefix(200)) does not).", param: "model_limits")
            }
            var limits = RateLimits()
            var none: [String: RateLimits] = [:]
            try applyLimits(fields, to: &limits, models: &none)
            if !limits.isEmpty { parsed[model] = limits }
        }
        models = parsed
    }

    static func isModelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 200 && !name.contains(",") && !name.contains("\0") && !name.contains(where: { $0.isNewline || $0.isWhitespace })
    }

    static func object(_ request: Request, _ context: ConduitRequestContext) async throws -> [String: JSONValue] {
        let value = try await request.decodeJSON(JSONValue.self, context: context)
        guard case .object(let object) = value else { throw APIError.invalidRequest("The body must be a JSON object.") }
        return object
    }

    static func slug(_ name: String) -> String {
        var slug = ""
        for scalar in name.lowercased().unicodeScalars {
            switch scalar {
            case "a"..."z", "0"..."9": slug.unicodeScalars.append(scalar)
            default: if !slug.isEmpty, slug.last != "-" { slug += "-" }
            }
        }
        while slug.hasSuffix("-") { slug.removeLast() }
        return String(slug.prefix(Identifier.tenant.maxLength))
    }

    static func randomHex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func noKey(_ id: String) -> APIError { APIError.notFound("No key '\(id)'.") }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        try jsonResponse(value, status: status, encoder: EventCoding.encoder())
    }
}
