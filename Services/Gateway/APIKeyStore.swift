import ConduitKit
import Foundation

/// Where API keys live, by the SHA-256 of the key (a store never sees a key itself):
/// `PostgresAPIKeyStore`; an application test keeps them in a dictionary.
protocol APIKeyStore: Sendable {
    /// The caller whose key hashes to `hash`, or nil for an unknown, revoked or expired key.
    func identity(forHash hash: Data) async throws -> KeyLookup?
    /// Makes the key hashing to `hash` the platform-admin key of `tenant` (creating the tenant),
    /// replacing an earlier one.
    func installAdminKey(hash: Data, prefix: String, tenant: String) async throws
}

/// A key's caller, and what the gateway enforces for it.
struct KeyLookup: Sendable, Equatable {
    var identity: CallerIdentity
    /// The key's and its tenant's limits, and the models the key may use.
    var limits = CallerLimits()
    /// When the key (or the rotated-out secret used) stops working.
    var validUntil: Date?

    /// The identity with the limits it is held to.
    var caller: CallerIdentity {
        var caller = identity
        caller.limits = limits
        caller.models = limits.allowedModels
        return caller
    }
}
