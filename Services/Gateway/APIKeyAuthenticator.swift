import ConduitKit
import Crypto
import Foundation
import Synchronization

/// API keys: hashed with SHA-256 before they reach the store, each belonging to a tenant.
/// Lookups are cached for a short while so a busy key costs no store round trip; a revoked key
/// stops working within `cacheLifetime`. The cache holds at most `maxCachedKeys` hashes (it
/// empties when full, so a flood of made-up keys cannot grow it).
final class APIKeyAuthenticator: Sendable {
    let store: any APIKeyStore
    let cacheLifetime: Duration
    static let maxCachedKeys = 10_000
    private struct Entry {
        var identity: CallerIdentity?
        var expires: ContinuousClock.Instant
    }
    private let cache = Mutex<[Data: Entry]>([:])

    init(store: any APIKeyStore, cacheLifetime: Duration = .seconds(30)) {
        self.store = store
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
        let identity = try await store.identity(forHash: hash)
        cache.withLock { cache in
            if cache.count > Self.maxCachedKeys { cache.removeAll() }
            cache[hash] = Entry(identity: identity, expires: now + cacheLifetime)
        }
        return identity
    }

    /// Makes `key` the admin key of `tenant`: what `make up` does with the key it generates or is given.
    func installAdminKey(_ key: String, tenant: String) async throws {
        try await store.installAdminKey(hash: Self.hash(key), tenant: tenant)
    }
}
