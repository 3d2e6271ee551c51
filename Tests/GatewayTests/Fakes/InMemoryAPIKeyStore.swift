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

    func identity(forHash hash: Data) async throws -> CallerIdentity? {
        lookups.withLock { $0 += 1 }
        return keys.withLock { $0[hash] }
    }

    func installAdminKey(hash: Data, tenant: String) async throws {
        keys.withLock { keys in
            keys = keys.filter { $0.value.keyID != "admin-" + tenant }
            keys[hash] = CallerIdentity(tenant: tenant, keyID: "admin-" + tenant, roles: ["admin"])
        }
    }
}
