import ConduitKit
import Foundation
import Postgres

/// API keys in `gateway.api_keys` (hashes only), each belonging to a tenant in `gateway.tenants`.
struct PostgresAPIKeyStore: APIKeyStore {
    let postgres: PostgresClient

    func identity(forHash hash: Data) async throws -> CallerIdentity? {
        let rows = try await postgres.query(
            """
            SELECT id, tenant_id, array_to_string(roles, ','), chat_defaults::text, team, user_id, array_to_string(tags, ',')
            FROM gateway.api_keys WHERE key_hash = $1 AND revoked_at IS NULL
            """, hash)
        return try rows.first.map { row in
            CallerIdentity(tenant: try row.decode(at: 1), keyID: try row.decode(at: 0),
                           roles: try row.decode(String.self, at: 2).split(separator: ",").map(String.init),
                           team: try row.decode(String?.self, at: 4), user: try row.decode(String?.self, at: 5),
                           chatDefaults: try row.decode(String?.self, at: 3),
                           tags: try row.decode(String.self, at: 6).split(separator: ",").map(String.init))
        }
    }

    func installAdminKey(hash: Data, tenant: String) async throws {
        try await postgres.withTransaction { session in
            try await session.query("INSERT INTO gateway.tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant)
            try await session.query("""
                INSERT INTO gateway.api_keys (id, tenant_id, key_hash, roles) VALUES ('admin-' || $1, $1, $2, '{admin}')
                ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, revoked_at = NULL
                """, tenant, hash)
        }
    }
}
