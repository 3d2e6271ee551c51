import ConduitKit
import Foundation
import Postgres

/// API keys in `gateway.api_keys` (hashes only), each belonging to a tenant in `gateway.tenants`.
struct PostgresAPIKeyStore: APIKeyStore, KeyAdministration, KeyChanges {
    let postgres: PostgresClient

    func identity(forHash hash: Data) async throws -> KeyLookup? {
        let rows = try await postgres.query(
            """
            SELECT k.id, k.tenant_id, array_to_string(k.roles, ','), k.chat_defaults::text, k.team, k.user_id, array_to_string(k.tags, ','),
                   CASE WHEN k.key_hash = $1 THEN k.expires_at ELSE least(k.expires_at, k.previous_valid_until) END,
                   k.rpm_limit, k.tpm_limit, k.max_concurrent, k.model_limits::text, array_to_string(k.models, ','), k.models IS NOT NULL,
                   t.rpm_limit, t.tpm_limit, t.max_concurrent, t.model_limits::text
            FROM gateway.api_keys k JOIN gateway.tenants t ON t.id = k.tenant_id
            WHERE (k.key_hash = $1 OR (k.previous_hash = $1 AND k.previous_valid_until > now()))
              AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
            """, hash)
        return try rows.first.map { row in
            var limits = CallerLimits()
            limits.key = RateLimits(rpm: try row.decode(at: 8), tpm: try row.decode(at: 9), maxConcurrent: try row.decode(at: 10))
            limits.keyModels = try Self.modelLimits(try row.decode(String?.self, at: 11))
            if try row.decode(Bool.self, at: 13) {
                limits.allowedModels = try row.decode(String.self, at: 12).split(separator: ",").map(String.init)
            }
            limits.tenant = RateLimits(rpm: try row.decode(at: 14), tpm: try row.decode(at: 15), maxConcurrent: try row.decode(at: 16))
            limits.tenantModels = try Self.modelLimits(try row.decode(String?.self, at: 17))
            return KeyLookup(
                identity: CallerIdentity(
                    tenant: try row.decode(at: 1), keyID: try row.decode(at: 0),
                    roles: try row.decode(String.self, at: 2).split(separator: ",").map(String.init),
                    team: try row.decode(String?.self, at: 4), user: try row.decode(String?.self, at: 5),
                    chatDefaults: try row.decode(String?.self, at: 3),
                    tags: try row.decode(String.self, at: 6).split(separator: ",").map(String.init)),
                limits: limits, validUntil: try row.decode(Date?.self, at: 7))
        }
    }

    /// `model_limits` as stored (JSON text), by model.
    static func modelLimits(_ text: String?) throws -> [String: RateLimits] {
        guard let text else { return [:] }
        return try JSONDecoder().decode([String: RateLimits].self, from: Data(text.utf8))
    }

    static func modelLimitsText(_ limits: [String: RateLimits]) -> String? {
        guard !limits.isEmpty, let data = try? JSONEncoder().encode(limits) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    func installAdminKey(hash: Data, prefix: String, tenant: String) async throws {
        try await postgres.withTransaction { session in
            try await session.query("INSERT INTO gateway.tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant)
            try await session.query("""
                INSERT INTO gateway.api_keys (id, tenant_id, key_hash, roles, name, prefix) VALUES ('admin-' || $1, $1, $2, '{platform_admin}', 'admin', $3)
                ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, prefix = excluded.prefix, revoked_at = NULL,
                    previous_hash = NULL, previous_valid_until = NULL, updated_at = now()
                """, tenant, hash, prefix)
        }
    }

    // MARK: tenants

    static let tenantColumns = "id, name, created_at, rpm_limit, tpm_limit, max_concurrent, model_limits::text"

    func createTenant(id: String, name: String) async throws -> Tenant? {
        try await postgres.query(
            "INSERT INTO gateway.tenants (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING \(Self.tenantColumns)", id, name
        ).first.map(Self.tenant)
    }

    func tenant(_ id: String) async throws -> Tenant? {
        try await postgres.query("SELECT \(Self.tenantColumns) FROM gateway.tenants WHERE id = $1", id).first.map(Self.tenant)
    }

    func tenants() async throws -> [Tenant] {
        try await postgres.query("SELECT \(Self.tenantColumns) FROM gateway.tenants ORDER BY created_at, id LIMIT 10000").map(Self.tenant)
    }

    func updateTenant(_ tenant: Tenant) async throws -> Tenant? {
        try await postgres.query("""
            UPDATE gateway.tenants SET name = $2, rpm_limit = $3, tpm_limit = $4, max_concurrent = $5, model_limits = $6::jsonb, updated_at = now()
            WHERE id = $1 RETURNING \(Self.tenantColumns)
            """, tenant.id, tenant.name, tenant.limits.rpm, tenant.limits.tpm, tenant.limits.maxConcurrent, Self.modelLimitsText(tenant.modelLimits)
        ).first.map(Self.tenant)
    }

    // MARK: keys

    static let columns = """
        id, tenant_id, array_to_string(roles, ','), name, prefix, team, user_id, array_to_string(tags, ','), expires_at, rpm_limit,
        metadata::text, created_at, revoked_at, previous_valid_until, max_concurrent, tpm_limit, array_to_string(models, ','), models IS NOT NULL,
        model_limits::text, chat_defaults::text
        """

    func createKey(_ key: ManagedKey, hash: Data) async throws {
        try await postgres.query("""
            INSERT INTO gateway.api_keys (id, tenant_id, key_hash, roles, name, prefix, team, user_id, tags, expires_at, rpm_limit, metadata, created_at,
                                          max_concurrent, tpm_limit, models, model_limits, chat_defaults)
            VALUES ($1, $2, $3, ARRAY[$4], $5, $6, $7, $8, string_to_array($9, ','), $10, $11, $12::jsonb, $13, $14, $15,
                    CASE WHEN $16::boolean THEN string_to_array($17, ',') END, $18::jsonb, $19::jsonb)
            """, key.id, key.tenant, hash, key.role.rawValue, key.name, key.prefix, key.team, key.user, key.tags.joined(separator: ","),
            key.expiresAt, key.limits.rpm, key.metadata, key.createdAt, key.limits.maxConcurrent, key.limits.tpm,
            key.models != nil, (key.models ?? []).joined(separator: ","), Self.modelLimitsText(key.modelLimits), key.chatDefaults)
    }

    func keys(tenant: String?, after: String?, limit: Int) async throws -> [ManagedKey] {
        try await postgres.query("""
            SELECT \(Self.columns) FROM gateway.api_keys
            WHERE ($1::text IS NULL OR tenant_id = $1) AND id > $2 ORDER BY id LIMIT $3
            """, tenant, after ?? "", limit).map(Self.key)
    }

    func key(_ id: String) async throws -> ManagedKey? {
        try await postgres.query("SELECT \(Self.columns) FROM gateway.api_keys WHERE id = $1", id).first.map(Self.key)
    }

    func updateKey(_ key: ManagedKey) async throws -> ManagedKey? {
        try await postgres.query("""
            UPDATE gateway.api_keys SET roles = ARRAY[$2], name = $3, team = $4, user_id = $5, tags = string_to_array($6, ','),
                expires_at = $7, rpm_limit = $8, metadata = $9::jsonb, max_concurrent = $10, tpm_limit = $11,
                models = CASE WHEN $12::boolean THEN string_to_array($13, ',') END, model_limits = $14::jsonb, chat_defaults = $15::jsonb,
                updated_at = now()
            WHERE id = $1 AND revoked_at IS NULL RETURNING \(Self.columns)
            """, key.id, key.role.rawValue, key.name, key.team, key.user, key.tags.joined(separator: ","), key.expiresAt, key.limits.rpm, key.metadata,
            key.limits.maxConcurrent, key.limits.tpm, key.models != nil, (key.models ?? []).joined(separator: ","), Self.modelLimitsText(key.modelLimits),
            key.chatDefaults
        ).first.map(Self.key)
    }

    func revokeKey(_ id: String) async throws -> ManagedKey? {
        try await postgres.query("""
            UPDATE gateway.api_keys SET revoked_at = coalesce(revoked_at, now()), updated_at = now() WHERE id = $1 RETURNING \(Self.columns)
            """, id).first.map(Self.key)
    }

    func rotateKey(_ id: String, hash: Data, prefix: String, graceUntil: Date) async throws -> ManagedKey? {
        try await postgres.query("""
            UPDATE gateway.api_keys SET previous_hash = key_hash, previous_valid_until = $4, key_hash = $2, prefix = $3, updated_at = now()
            WHERE id = $1 AND revoked_at IS NULL RETURNING \(Self.columns)
            """, id, hash, prefix, graceUntil).first.map(Self.key)
    }

    // MARK: changes

    func activeHashes() async throws -> [Data] {
        let rows = try await postgres.query("""
            SELECT key_hash FROM gateway.api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            UNION ALL
            SELECT previous_hash FROM gateway.api_keys
            WHERE previous_valid_until > now() AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            """)
        return try rows.map { try $0.decode(Data.self, at: 0) }
    }

    func changes(since: Date) async throws -> (changes: [(hash: Data, active: Bool)], now: Date) {
        // A tenant's change (its limits) counts as a change of each of its keys.
        let rows = try await postgres.query("""
            SELECT k.key_hash, k.previous_hash, k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()),
                   coalesce(k.previous_valid_until > now(), false), now()
            FROM gateway.api_keys k
            WHERE k.updated_at >= $1 OR k.tenant_id IN (SELECT id FROM gateway.tenants WHERE updated_at >= $1)
            UNION ALL SELECT NULL::bytea, NULL::bytea, false, false, now()
            """, since)
        var changes: [(hash: Data, active: Bool)] = []
        var now = since
        for row in rows {
            now = try row.decode(Date.self, at: 4)
            let active: Bool = try row.decode(at: 2)
            let graced: Bool = try row.decode(at: 3)
            if let current = try row.decode(Data?.self, at: 0) { changes.append((current, active)) }
            if let previous = try row.decode(Data?.self, at: 1) { changes.append((previous, active && graced)) }
        }
        return (changes, now)
    }

    static func tenant(_ row: PostgresRow) throws -> Tenant {
        Tenant(id: try row.decode(at: 0), name: try row.decode(at: 1), createdAt: try row.decode(at: 2),
               limits: RateLimits(rpm: try row.decode(at: 3), tpm: try row.decode(at: 4), maxConcurrent: try row.decode(at: 5)),
               modelLimits: try modelLimits(try row.decode(String?.self, at: 6)))
    }

    static func key(_ row: PostgresRow) throws -> ManagedKey {
        let roles = try row.decode(String.self, at: 2).split(separator: ",").compactMap { Role(rawValue: String($0)) }
        return ManagedKey(
            id: try row.decode(at: 0), tenant: try row.decode(at: 1), role: roles.first ?? .viewer, name: try row.decode(at: 3),
            prefix: try row.decode(at: 4), team: try row.decode(at: 5), user: try row.decode(at: 6),
            tags: try row.decode(String.self, at: 7).split(separator: ",").map(String.init), expiresAt: try row.decode(at: 8),
            limits: RateLimits(rpm: try row.decode(at: 9), tpm: try row.decode(at: 15), maxConcurrent: try row.decode(at: 14)),
            models: try row.decode(Bool.self, at: 17) ? try row.decode(String.self, at: 16).split(separator: ",").map(String.init) : nil,
            modelLimits: try modelLimits(try row.decode(String?.self, at: 18)), chatDefaults: try row.decode(at: 19),
            metadata: try row.decode(at: 10), createdAt: try row.decode(at: 11),
            revokedAt: try row.decode(at: 12), previousValidUntil: try row.decode(at: 13))
    }
}
