import ConduitKit
import ConduitProtocol
import Foundation

/// A key as the admin API shows it: never its secret (only its visible prefix) nor its hash.
struct ManagedKey: Sendable, Equatable, Encodable {
    var id: String
    var tenant: String
    var role: Role
    var name: String?
    /// The first characters of the key, to recognise it (`cdt-AbCd1234`); nil for keys made in SQL.
    var prefix: String?
    var team: String?
    var user: String?
    var tags: [String]
    var expiresAt: Date?
    var limits = RateLimits()
    /// The models (and routers) the key may ask for; nil is every model.
    var models: [String]?
    /// Limits of this key's traffic to one model.
    var modelLimits: [String: RateLimits] = [:]
    /// The `conduit` options the key's chat requests get where they name none (RAG, cache), JSON text.
    var chatDefaults: String?
    /// A JSON object, as text.
    var metadata: String?
    var createdAt: Date
    var revokedAt: Date?
    /// After a rotation: until when the previous secret still works.
    var previousValidUntil: Date?

    enum CodingKeys: String, CodingKey {
        case id, tenant, role, name, prefix, team, user, tags, metadata
        case expiresAt = "expires_at"
        case rpmLimit = "rpm_limit"
        case tpmLimit = "tpm_limit"
        case maxConcurrent = "max_concurrent"
        case models
        case modelLimits = "model_limits"
        case chatDefaults = "chat_defaults"
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
        case previousValidUntil = "previous_valid_until"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(tenant, forKey: .tenant)
        try container.encode(role, forKey: .role)
        try container.encode(name, forKey: .name)
        try container.encode(prefix, forKey: .prefix)
        try container.encode(team, forKey: .team)
        try container.encode(user, forKey: .user)
        try container.encode(tags, forKey: .tags)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(limits.rpm, forKey: .rpmLimit)
        try container.encode(limits.tpm, forKey: .tpmLimit)
        try container.encode(limits.maxConcurrent, forKey: .maxConcurrent)
        try container.encode(models, forKey: .models)
        try container.encode(modelLimits, forKey: .modelLimits)
        try container.encode(chatDefaults.flatMap { JSONValue.parse(Data($0.utf8)) }, forKey: .chatDefaults)
        // Stored as JSON text; shown as the object it is.
        try container.encode(metadata.flatMap { JSONValue.parse(Data($0.utf8)) }, forKey: .metadata)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(revokedAt, forKey: .revokedAt)
        try container.encode(previousValidUntil, forKey: .previousValidUntil)
    }
}

struct Tenant: Sendable, Equatable {
    var id: String
    var name: String
    var createdAt: Date
    /// The tenant's limits: every key of the tenant together.
    var limits = RateLimits()
    /// Limits of the tenant's traffic to one model.
    var modelLimits: [String: RateLimits] = [:]
}

/// The admin API's store of tenants and keys: `PostgresAPIKeyStore`. (The application tier runs
/// without it; the API is tested over Postgres in GatewayStoreTests.)
protocol KeyAdministration: Sendable {
    /// Nil when a tenant with this id exists.
    func createTenant(id: String, name: String) async throws -> Tenant?
    func tenant(_ id: String) async throws -> Tenant?
    func tenants() async throws -> [Tenant]
    /// Writes a tenant's name and limits; nil when there is no such tenant.
    func updateTenant(_ tenant: Tenant) async throws -> Tenant?
    func createKey(_ key: ManagedKey, hash: Data) async throws
    /// A tenant's keys (every tenant's when nil), oldest first, revoked ones included.
    func keys(tenant: String?, after: String?, limit: Int) async throws -> [ManagedKey]
    func key(_ id: String) async throws -> ManagedKey?
    /// Writes the mutable fields (name, role, team, user, tags, expiry, rate limit, metadata) of
    /// a key that is not revoked.
    func updateKey(_ key: ManagedKey) async throws -> ManagedKey?
    func revokeKey(_ id: String) async throws -> ManagedKey?
    /// A new secret for a key that is not revoked; the old one keeps working until `graceUntil`.
    func rotateKey(_ id: String, hash: Data, prefix: String, graceUntil: Date) async throws -> ManagedKey?
}

/// What the watcher reads to keep every replica's view of the keys current.
protocol KeyChanges: Sendable {
    /// Every hash that may authenticate now (current and, within their grace, previous secrets).
    func activeHashes() async throws -> [Data]
    /// The keys changed at or after `since` (by the database's clock): their hashes, whether each
    /// may authenticate now, and the database's time of the query.
    func changes(since: Date) async throws -> (changes: [(hash: Data, active: Bool)], now: Date)
}
