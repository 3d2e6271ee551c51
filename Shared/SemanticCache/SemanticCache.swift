import ConduitKit
import ConduitProtocol
import Foundation
import Logging
import Prometheus
import Redis
import SearchEngine
import ServiceLifecycle
import Synchronization

/// Answers stored by the meaning of the question that produced them, within one exact context.
///
/// Redis is the store: each entry is `cache:{tenant}:{context}:{id}` (a JSON string with the
/// question, its embedding and the caller's payload) with a TTL. Lookups never touch Redis keys
/// in bulk: every replica keeps an in-process HNSW index per tenant and context, loaded from
/// Redis at start (one SCAN; entries are searchable by exact scan as soon as they are read, and
/// move into the graph in the background) and kept in step with the other replicas through the stream
/// `cache:@log`, which every store and purge appends to and every replica tails. A candidate
/// must reach the similarity threshold and pass `CacheGuard`; its payload is then read with one
/// GET, so an entry that expired or was purged elsewhere is never served.
public final class SemanticCache: Service, Sendable {
    public struct Configuration: Sendable {
        /// How long an entry lives. Default 24 h.
        public var ttl: Duration
        /// How often the replication log is read. Default 200 ms.
        public var pollInterval: Duration
        /// Nearest entries checked against the threshold and the guard. Default 8.
        public var candidates: Int
        /// Bound on the replication log's length. Default 100,000.
        public var logLength: Int
        /// Entries held in memory at most, all tenants and contexts. Default 200,000.
        public var maxEntries: Int
        /// Memory the in-process indexes may take, estimated. Default 512 MiB.
        public var maxBytes: Int
        /// How often expired entries are swept out and empty indexes dropped. Default 30 s.
        public var sweepInterval: Duration

        public init(ttl: Duration = .seconds(86_400), pollInterval: Duration = .milliseconds(200), candidates: Int = 8, logLength: Int = 100_000,
                    maxEntries: Int = 200_000, maxBytes: Int = 512 << 20, sweepInterval: Duration = .seconds(30)) {
            self.ttl = ttl
            self.pollInterval = pollInterval
            self.candidates = candidates
            self.logLength = logLength
            self.maxEntries = maxEntries
            self.maxBytes = maxBytes
            self.sweepInterval = sweepInterval
        }
    }

    public struct Hit: Sendable {
        public var payload: [UInt8]
        public var similarity: Double
        /// The question the payload answered.
        public var question: String

        public init(payload: [UInt8], similarity: Double, question: String) {
            self.payload = payload
            self.similarity = similarity
            self.question = question
        }
    }

    public enum Lookup: Sendable {
        case hit(Hit)
        /// `similarity` is the best candidate's, if any; `rejection` says why a candidate above
        /// the threshold was refused.
        case miss(similarity: Double?, rejection: CacheGuard.Rejection?)
    }

    public static let logKey = "cache:@log"

    let redis: RedisClient
    let configuration: Configuration
    let logger: Logger
    /// Where graph inserts, searches and decoding run: never on the cooperative pool.
    let engine: EngineExecutor
    private let indexes = Mutex<[String: ContextIndex]>([:])
    private let logPosition = Mutex<String>("0-0")
    private let metrics: Metrics
    /// Entries and bytes inserted since the last exact count, on top of it. Removals never lower
    /// it, so it is never below the true size: while it fits the bounds, an insert needs no walk
    /// over every index (which, with many contexts, made a start-up load quadratic).
    private let upperBound = Mutex<(entries: Int, bytes: Int)>((0, 0))

    public init(redis: RedisClient, configuration: Configuration = .init(), engine: EngineExecutor,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger) {
        self.redis = redis
        self.configuration = configuration
        self.engine = engine
        self.logger = logger
        metrics = Metrics(registry: registry)
    }

    /// The in-memory size as gauges, and what bounding it cost.
    struct Metrics: Sendable {
        let entries: Gauge
        let contexts: Gauge
        let bytes: Gauge
        let evictedContexts: Counter
        let evictedEntries: Counter
        let expired: Counter
        let pending: Gauge

        init(registry: PrometheusCollectorRegistry) {
            pending = registry.makeGauge(name: "semantic_cache_pending_entries", help: "Entries loaded at start and searched by exact scan until the background build has put them into their graph.")
            entries = registry.makeGauge(name: "semantic_cache_entries", help: "Semantic cache entries held in memory.")
            contexts = registry.makeGauge(name: "semantic_cache_contexts", help: "In-memory indexes, one per tenant and cache context.")
            bytes = registry.makeGauge(name: "semantic_cache_memory_bytes", help: "Memory the in-memory indexes take, estimated.")
            evictedContexts = registry.makeCounter(name: "semantic_cache_evicted_contexts_total", help: "Indexes dropped, least recently used first, to stay within the entry and memory bounds.")
            evictedEntries = registry.makeCounter(name: "semantic_cache_evicted_entries_total", help: "Entries dropped from memory to stay within the bounds (they stay in Redis until their TTL).")
            expired = registry.makeCounter(name: "semantic_cache_expired_entries_total", help: "Entries swept out of memory when their TTL passed.")
        }
    }

    /// Loads every entry from Redis, then follows the replication log until shutdown while the
    /// loaded entries move into their graphs in the background.
    public func run() async throws {
        try await load()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.buildGraphs() }
            var lastSweep = ContinuousClock.now
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                do {
                    try await followLog()
                } catch {
                    logger.debug("semantic cache log not read", metadata: ["error": "\(error)"])
                }
                if ContinuousClock.now - lastSweep >= configuration.sweepInterval {
                    // A walk over every entry, and graph removals: engine work.
                    try? await engine.run { self.sweep() }
                    lastSweep = .now
                }
                try? await Task.sleep(for: configuration.pollInterval)
            }
            group.cancelAll()
        }
    }

    /// Entries loaded but not yet in a graph (searched by exact scan meanwhile).
    public var pendingCount: Int { indexes.withLock { $0.values.reduce(0) { $0 + $1.pendingCount } } }

    /// Puts every loaded entry into its context's graph, a block at a time on an engine thread.
    public func buildGraphs() async throws {
        let started = ContinuousClock.now
        var built = 0
        while true {
            let waiting = indexes.withLock { $0.filter { $0.value.pendingCount > 0 } }
            if waiting.isEmpty { break }
            for (key, index) in waiting {
                var more = true
                // An index evicted meanwhile is not worth building.
                while more, indexes.withLock({ $0[key] === index }) {
                    more = try await engine.run { index.buildPendingBlock() }
                    built += 1
                    try Task.checkCancellation()
                    metrics.pending.set(to: Double(pendingCount))
                }
            }
        }
        metrics.pending.set(to: 0)
        if built > 0 {
            logger.info("semantic cache graphs built", metadata: ["blocks": "\(built)", "seconds": "\(ContinuousClock.now - started)"])
        }
    }

    /// Removes expired entries from memory and drops indexes left empty, without waiting for a
    /// lookup to come across them.
    public func sweep(now: ContinuousClock.Instant = .now) {
        let all = indexes.withLock { Array($0) }
        var removed = 0
        for (_, index) in all { removed += index.removeExpired(now: now) }
        indexes.withLock { indexes in
            for (key, index) in indexes where index.count == 0 { indexes[key] = nil }
        }
        metrics.expired.increment(by: Int64(removed))
        updateGauges()
    }

    /// Contexts held in memory.
    public var contextCount: Int { indexes.withLock { $0.count } }

    /// Memory the in-process indexes take, estimated.
    public var memoryBytes: Int { indexes.withLock { $0.values.reduce(0) { $0 + $1.bytes } } }

    /// Counts exactly (a walk over every index): sets the gauges and the upper bound.
    private func updateGauges() {
        let (entries, contexts, bytes) = indexes.withLock { indexes in
            (indexes.values.reduce(0) { $0 + $1.count }, indexes.count, indexes.values.reduce(0) { $0 + $1.bytes })
        }
        upperBound.withLock { $0 = (entries, bytes) }
        metrics.entries.set(to: Double(entries))
        metrics.contexts.set(to: Double(contexts))
        metrics.bytes.set(to: Double(bytes))
    }

    /// Entries held in memory, all tenants.
    public var count: Int { indexes.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    public func lookup(tenant: String, context: String, question: String, vector: [Float], threshold: Double) async throws -> Lookup {
        guard let index = indexes.withLock({ $0[Self.indexKey(tenant, context)] }), index.dimension == vector.count else {
            return .miss(similarity: nil, rejection: nil)
        }
        var best: Double?
        var rejection: CacheGuard.Rejection?
        let candidates = configuration.candidates
        for candidate in try await engine.run({ index.nearest(vector, count: candidates) }) {
            best = max(best ?? candidate.similarity, candidate.similarity)
            guard candidate.similarity >= threshold else { break }
            if let refused = CacheGuard.check(question, against: candidate.question) {
                rejection = rejection ?? refused
                continue
            }
            guard let bytes = try await redis.get(Self.entryKey(tenant, context, candidate.id)),
                  let entry = try? JSONDecoder().decode(StoredEntry.self, from: Data(bytes)) else {
                index.remove(id: candidate.id)  // expired, or purged by another replica
                dropIfEmpty(Self.indexKey(tenant, context))
                continue
            }
            return .hit(Hit(payload: Array(entry.payload.utf8), similarity: candidate.similarity, question: entry.question))
        }
        return .miss(similarity: best, rejection: rejection)
    }

    /// Stores an answer; other replicas learn of it through the log.
    public func store(tenant: String, context: String, question: String, vector: [Float], payload: [UInt8]) async throws {
        let id = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let key = Self.entryKey(tenant, context, id)
        _ = try await redis.set(key, try Self.encodedEntry(question: question, vector: vector, payload: payload), ttl: configuration.ttl)
        let expires = ContinuousClock.now + configuration.ttl
        try await engine.run { self.insert(tenant: tenant, context: context, id: id, question: question, vector: vector, expires: expires) }
        _ = try await redis.send(RedisCommand("XADD", Self.logKey, "MAXLEN", "~", configuration.logLength, "*", "op", "put", "key", key))
    }

    /// Removes every entry of `tenant` here, in Redis, and (through the log) on other replicas.
    /// Returns the number of Redis entries deleted.
    @discardableResult
    public func purge(tenant: String) async throws -> Int {
        dropIndexes(of: tenant)
        var deleted = 0
        try await scan(match: "cache:\(Self.globEscaped(tenant)):*:*") { keys in
            deleted += try await redis.send(RedisCommand("DEL", arguments: keys)).int ?? 0
        }
        _ = try await redis.send(RedisCommand("XADD", Self.logKey, "MAXLEN", "~", configuration.logLength, "*", "op", "purge", "tenant", tenant))
        return deleted
    }

    // MARK: Loading and replication

    /// Reads every entry from Redis into memory (`run` does this first).
    public func load() async throws {
        // The log position first: whatever is stored while the scan runs is read from the log after.
        let last = try await redis.send(RedisCommand("XREVRANGE", Self.logKey, "+", "-", "COUNT", 1))
        if let id = last.array?.first?.array?.first?.string { logPosition.withLock { $0 = id } }
        let started = ContinuousClock.now
        var loaded = 0
        try await scan(match: "cache:*:*:*") { keys in
            let values = try await redis.send(RedisCommand("MGET", arguments: keys)).array ?? []
            // Decoding is CPU work: on an engine thread. The vectors wait in flat sets, searchable
            // at once; `buildGraphs` moves them into the graphs.
            loaded += try await engine.run {
                zip(keys, values).reduce(0) { count, pair in
                    guard case .bulk(let bytes) = pair.1 else { return count }
                    return count + (self.add(key: pair.0, bytes: bytes, expires: nil, deferred: true) ? 1 : 0)
                }
            }
        }
        metrics.pending.set(to: Double(pendingCount))
        logger.info("semantic cache loaded", metadata: ["entries": "\(loaded)", "seconds": "\(ContinuousClock.now - started)"])
    }

    func followLog() async throws {
        let position = logPosition.withLock { $0 }
        let reply = try await redis.send(RedisCommand("XREAD", "COUNT", 1000, "STREAMS", Self.logKey, position))
        guard let stream = reply.array?.first?.array, stream.count == 2, let entries = stream[1].array else { return }
        for entry in entries {
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { continue }
            let fields = parts[1].array?.compactMap(\.string) ?? []
            var values: [String: String] = [:]
            for pair in stride(from: 0, to: fields.count - 1, by: 2) { values[fields[pair]] = fields[pair + 1] }
            switch values["op"] {
            case "put":
                if let key = values["key"], let (tenant, context, entryID) = Self.parse(key: key),
                   indexes.withLock({ $0[Self.indexKey(tenant, context)]?.contains(id: entryID) }) != true,
                   let bytes = try await redis.get(key) {
                    let ttl = try await redis.pttl(key)
                    let expires = ttl.map { ContinuousClock.now + .milliseconds($0) }
                    _ = try await engine.run { self.add(key: key, bytes: bytes, expires: expires) }
                }
            case "purge":
                if let tenant = values["tenant"] { dropIndexes(of: tenant) }
            default:
                break
            }
            logPosition.withLock { $0 = id }
        }
    }

    private func add(key: String, bytes: [UInt8], expires: ContinuousClock.Instant?, deferred: Bool = false) -> Bool {
        guard let (tenant, context, id) = Self.parse(key: key),
              let entry = try? JSONDecoder().decode(StoredEntry.self, from: Data(bytes)),
              let vector = Float32Coding.floats(base64: entry.vector), !vector.isEmpty else { return false }
        insert(tenant: tenant, context: context, id: id, question: entry.question, vector: vector, expires: expires ?? .now + configuration.ttl, deferred: deferred)
        return true
    }

    private func insert(tenant: String, context: String, id: String, question: String, vector: [Float], expires: ContinuousClock.Instant, deferred: Bool = false) {
        let key = Self.indexKey(tenant, context)
        let size = ContextIndex.estimatedBytes(dimension: vector.count, question: question)
        let surelyFits = upperBound.withLock { bound in
            guard bound.entries + 1 <= configuration.maxEntries, bound.bytes + size <= configuration.maxBytes else { return false }
            bound = (bound.entries + 1, bound.bytes + size)
            return true
        }
        if !surelyFits {
            guard makeRoom(for: size, keeping: key) else {
                // One context alone fills the bounds: the entry stays in Redis only.
                metrics.evictedEntries.increment()
                return
            }
        }
        let (index, created) = indexes.withLock { indexes -> (ContextIndex, Bool) in
            if let existing = indexes[key] { return (existing, false) }
            let created = ContextIndex(tenant: tenant, dimension: vector.count)
            indexes[key] = created
            return (created, true)
        }
        if created, surelyFits { metrics.contexts.increment() }
        guard index.dimension == vector.count else { return }
        index.insert(id: id, question: question, vector: vector, expires: expires, deferred: deferred)
        if surelyFits {
            // Between exact counts (each sweep, each eviction) the gauges follow inserts only.
            metrics.entries.increment()
            metrics.bytes.increment(by: Double(size))
        } else {
            updateGauges()
        }
    }

    /// Drops least recently used indexes (never `key`'s) until one more entry of `size` bytes
    /// fits both bounds, and on down to nine tenths of them, so that a full cache walks and
    /// sorts its indexes once per tenth of its capacity rather than on every insert; false when
    /// the entry cannot fit even then.
    private func makeRoom(for size: Int, keeping key: String) -> Bool {
        let entryTarget = configuration.maxEntries * 9 / 10, byteTarget = configuration.maxBytes / 10 * 9
        let (dropped, droppedEntries, fits) = indexes.withLock { indexes -> (Int, Int, Bool) in
            var entries = indexes.values.reduce(0) { $0 + $1.count }
            var bytes = indexes.values.reduce(0) { $0 + $1.bytes }
            var dropped = 0
            var droppedEntries = 0
            if entries + 1 <= configuration.maxEntries, bytes + size <= configuration.maxBytes { return (0, 0, true) }
            let byAge = indexes.filter { $0.key != key }.sorted { $0.value.lastUsed < $1.value.lastUsed }
            for (victim, index) in byAge {
                guard entries + 1 > entryTarget || bytes + size > byteTarget else { break }
                entries -= index.count
                bytes -= index.bytes
                droppedEntries += index.count
                dropped += 1
                indexes[victim] = nil
            }
            return (dropped, droppedEntries, entries + 1 <= configuration.maxEntries && bytes + size <= configuration.maxBytes)
        }
        if dropped > 0 {
            metrics.evictedContexts.increment(by: Int64(dropped))
            metrics.evictedEntries.increment(by: Int64(droppedEntries))
        }
        return fits
    }

    private func dropIfEmpty(_ key: String) {
        indexes.withLock { indexes in
            if indexes[key]?.count == 0 { indexes[key] = nil }
        }
        updateGauges()
    }

    private func dropIndexes(of tenant: String) {
        indexes.withLock { indexes in
            for (key, index) in indexes where index.tenant == tenant { indexes[key] = nil }
        }
    }

    private func scan(match pattern: String, _ body: ([String]) async throws -> Void) async throws {
        var cursor = "0"
        repeat {
            let reply = try await redis.send(RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { throw RedisError(.unexpectedReply) }
            cursor = next
            let keys = parts[1].array?.compactMap(\.string) ?? []
            if !keys.isEmpty { try await body(keys) }
        } while cursor != "0"
    }

    // MARK: Keys

    public static func entryKey(_ tenant: String, _ context: String, _ id: String) -> String { "cache:\(tenant):\(context):\(id)" }

    /// An entry as Redis holds it, for tools that write entries in bulk (the benchmark).
    public static func encodedEntry(question: String, vector: [Float], payload: [UInt8]) throws -> [UInt8] {
        Array(try JSONEncoder().encode(StoredEntry(question: question, vector: Float32Coding.base64(vector), payload: String(decoding: payload, as: UTF8.self))))
    }

    static func indexKey(_ tenant: String, _ context: String) -> String { tenant + "\u{0}" + context }

    /// Tenant, context and id of an entry key; the tenant may itself contain ':'.
    static func parse(key: String) -> (tenant: String, context: String, id: String)? {
        guard key.hasPrefix("cache:") else { return nil }
        let parts = key.dropFirst(6).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        return (parts.dropLast(2).joined(separator: ":"), String(parts[parts.count - 2]), String(parts[parts.count - 1]))
    }

    static func globEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

/// What Redis holds for an entry.
struct StoredEntry: Codable {
    var question: String
    /// Base64 of the little-endian float32 components.
    var vector: String
    var payload: String
}

