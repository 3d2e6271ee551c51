import ConduitKit
import Crypto
import Foundation
import Prometheus
import Synchronization

/// API keys: hashed with SHA-256 before they reach the store, each belonging to a tenant.
/// Lookups are cached for `cacheLifetime` (never past the key's expiry) so a busy key costs no
/// store round trip; `KeyWatcher` drops a changed key's entry within a poll, so a revoked key
/// fails on every replica within a second. The watcher also keeps the set of every hash that may
/// authenticate: a key outside it (made up, or made on another replica since the last poll)
/// reaches the store only `unknownLookupsPerSecond` times a second, so a flood of random keys
/// cannot become a flood of queries. The cache holds at most `maxCachedKeys` hashes (it empties
/// when full).
final class APIKeyAuthenticator: Sendable {
    let store: any APIKeyStore
    let cacheLifetime: Duration
    static let maxCachedKeys = 10_000
    private struct Entry {
        var lookup: KeyLookup?
        var expires: ContinuousClock.Instant
    }
    private let cache = Mutex<[Data: Entry]>([:])
    /// The first eight bytes of every hash that may authenticate, once the watcher has loaded
    /// them; nil until then (every key asks the store).
    private let known = Mutex<Set<UInt64>?>(nil)
    private let unknownBudget: Mutex<TokenBucket>
    private let metrics: Metrics?

    init(store: any APIKeyStore, cacheLifetime: Duration = .seconds(30), unknownLookupsPerSecond: Int = 20, registry: PrometheusCollectorRegistry? = nil) {
        self.store = store
        self.cacheLifetime = cacheLifetime
        unknownBudget = Mutex(TokenBucket(perSecond: max(1, unknownLookupsPerSecond)))
        metrics = registry.map(Metrics.init)
    }

    static func hash(_ key: String) -> Data { Data(SHA256.hash(data: Data(key.utf8))) }

    /// A new random key: `cdt-` and 43 URL-safe characters (256 bits).
    static func generateKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "cdt-" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// What the admin API shows of a key: `cdt-` and its first eight random characters.
    static func prefix(of key: String) -> String { String(key.prefix(12)) }

    /// The caller a key belongs to, or nil for an unknown, revoked or expired key.
    func identity(forKey key: String) async throws -> CallerIdentity? {
        let hash = Self.hash(key)
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[hash] }), entry.expires > now { return entry.lookup?.caller }
        let isKnown = known.withLock { known in known.map { $0.contains(Self.short(hash)) } ?? true }
        if !isKnown {
            guard unknownBudget.withLock({ $0.take(now: now) }) else {
                metrics?.lookups("refused").increment()
                return nil
            }
        }
        let lookup = try await store.identity(forHash: hash)
        metrics?.lookups(lookup == nil ? "unknown" : "found").increment()
        var expires = now + cacheLifetime
        if let validUntil = lookup?.validUntil {
            expires = min(expires, now + .milliseconds(Int64(max(0, validUntil.timeIntervalSinceNow) * 1000)))
        }
        cache.withLock { cache in
            if cache.count > Self.maxCachedKeys { cache.removeAll() }
            cache[hash] = Entry(lookup: lookup, expires: expires)
        }
        return lookup?.caller
    }

    /// Every hash that may authenticate now (the watcher's first load).
    func load(_ hashes: [Data]) {
        let set = Set(hashes.map(Self.short))
        known.withLock { $0 = set }
        cache.withLock { $0.removeAll() }
        metrics?.known.set(to: Double(set.count))
    }

    /// Keys that changed: their cached lookups are dropped and the set follows.
    func apply(_ changes: [(hash: Data, active: Bool)]) {
        guard !changes.isEmpty else { return }
        cache.withLock { cache in for change in changes { cache[change.hash] = nil } }
        let count = known.withLock { known -> Int? in
            guard known != nil else { return nil }
            for change in changes {
                if change.active { known!.insert(Self.short(change.hash)) } else { known!.remove(Self.short(change.hash)) }
            }
            return known!.count
        }
        if let count { metrics?.known.set(to: Double(count)) }
    }

    /// Makes `key` the platform-admin key of `tenant`: what `make up` does with the key it generates or is given.
    func installAdminKey(_ key: String, tenant: String) async throws {
        try await store.installAdminKey(hash: Self.hash(key), prefix: Self.prefix(of: key), tenant: tenant)
    }

    private static func short(_ hash: Data) -> UInt64 {
        hash.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    struct TokenBucket {
        let perSecond: Int
        var tokens: Double
        var last: ContinuousClock.Instant?

        init(perSecond: Int) {
            self.perSecond = perSecond
            tokens = Double(perSecond)
        }

        mutating func take(now: ContinuousClock.Instant) -> Bool {
            if let last {
                let elapsed = now - last
                tokens = min(Double(perSecond), tokens + (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * Double(perSecond))
            }
            last = now
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    struct Metrics: Sendable {
        let registry: PrometheusCollectorRegistry
        let known: Gauge

        init(registry: PrometheusCollectorRegistry) {
            self.registry = registry
            known = registry.makeGauge(descriptor: .init(
                namespace: "gateway", subsystem: "api_keys", metricName: "known",
                helpText: "Key hashes this replica knows may authenticate (loaded and kept current by the key watcher)."))
        }

        func lookups(_ result: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(namespace: "gateway", subsystem: "api_key", metricName: "store_lookups", unitName: "total",
                                  helpText: "Key lookups past the cache: found, unknown, or refused without asking the store (an unknown key over the budget)."),
                labels: [("result", result)])
        }
    }
}
