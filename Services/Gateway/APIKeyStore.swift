import ConduitKit
import Foundation

/// Where API keys live, by the SHA-256 of the key (a store never sees a key itself):
/// `PostgresAPIKeyStore`; an application test keeps them in a dictionary.
protocol APIKeyStore: Sendable {
    /// The caller whose key hashes to `hash`, or nil for an unknown or revoked key.
    func identity(forHash hash: Data) async throws -> CallerIdentity?
    /// Makes the key hashing to `hash` the admin key of `tenant` (creating the tenant), replacing
    /// an earlier admin key.
    func installAdminKey(hash: Data, tenant: String) async throws
}
