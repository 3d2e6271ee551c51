import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import Hummingbird
import Prometheus
import TestSupport

/// Keys by hash in a dictionary: the stand-in for `PostgresAPIKeyStore` in the application tier
/// (no server is started; the real store is tested against Postgres in GatewayStoreTests).
final class InMemoryAPIKeyStore: APIKeyStore {
    private let keys = Locked<[Data: CallerIdentity]>([:])
    private let lookups = Locked(0)
    /// Lookups that reached the store (the authenticator caches the rest).
    var lookupCount: Int { lookups.withLock { $0 } }
    var hashes: Set<Data> { Set(keys.withLock { $0.keys }) }

    func identity(forHash hash: Data) async throws -> KeyLookup? {
        lookups.withLock { $0 += 1 }
        // The limits travel beside the identity, as they come from the real store.
        return keys.withLock { $0[hash] }.map { identity in
            var bare = identity
            bare.limits = CallerLimits()
            return KeyLookup(identity: bare, limits: identity.limits)
        }
    }

    func installAdminKey(hash: Data, prefix: String, tenant: String) async throws {
        install(hash: hash, identity: CallerIdentity(tenant: tenant, keyID: "admin-" + tenant, roles: ["platform_admin"]))
    }

    /// A key of `identity`'s (replacing any other key with its id).
    func install(hash: Data, identity: CallerIdentity) {
        keys.withLock { keys in
            keys = keys.filter { $0.value.keyID != identity.keyID }
            keys[hash] = identity
        }
    }
}
