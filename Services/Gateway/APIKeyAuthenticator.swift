import ConduitKit
import Crypto
import Foundation
import Postgres
import Synchronization

/// API keys: stored as SHA-256 hashes in `gateway.api_keys`, each belonging to a tenant.
/// Lookups are cached for a short while so a busy key costs no database round trip; a revoked
/// key stops working within `cacheLifetime`.
final class APIKeyAuthenticator: Sendable {
    let postgres: PostgresClient
    let cacheLifetime: Duration
    private struct Entry {
        var identity: CallerIdentity?
        var expires: ContinuousClock.Instant
    }
    private let cache = Mutex<[Data: Entry]>([:])

    init(postgres: PostgresClient, cacheLifetime: Duration = .seconds(30)) {
        self.postgres = postgres
        self.cacheLifetime = cacheLifetime
    }

    static func hash(_ key: String) -> Data { Data(SHA256.hash(data: Data(key.utf8))) }

    /// A new random key: `cdt-` and 43 URL-safe characters (256 bits).
    static func generateKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "cdt-" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The caller a key belongs to, or nil for an unknown or revoked key.
    func identity(forKey key: String) async throws -> CallerIdentity? {
        let hash = Self.hash(key)
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[hash] }), entry.expires > now { return entry.identity }
        let rows = try await postgres.query(
            "SELECT id, tenant_id, array_to_string(roles, ','), chat_defaults::text FROM gateway.api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash)
        let identity = try rows.first.map { row in
            CallerIdentity(tenant: try row.decode(at: 1), keyID: try row.decode(at: 0),
                           roles: try row.decode(String.self, at: 2).split(separator: ",").map(String.init),
                           chatDefaults: try row.decode(String?.self, at: 3))
        }
        cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[hash] = Entry(identity: identity, expires: now + cacheLifetime)
        }
        return identity
    }

    /// Makes `key` the admin key of `tenant` (creating the tenant), replacing an earlier admin
    /// key: what `make up` does with the key it generates or is given.
    func installAdminKey(_ key: String, tenant: String) async throws {
        try await postgres.withTransaction { session in
            try await session.query("INSERT INTO gateway.tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant)
            try await session.query("""
                INSERT INTO gateway.api_keys (id, tenant_id, key_hash, roles) VALUES ('admin-' || $1, $1, $2, '{admin}')
                ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, revoked_at = NULL
                """, tenant, Self.hash(key))
        }
    }
}
