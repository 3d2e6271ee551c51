import ConduitKit
import Foundation
import Logging
import Redis
import SemanticCache

/// Semantic cache lookup latency with 100,000 cached entries in one tenant and context, beside
/// the naive approach run on the same Redis in the same run: scan every cached embedding in
/// Redis (SCAN + MGET of raw float32 vectors, the cheapest form a naive cache could store) and
/// take the best cosine. Run by deploy/dev/bench-cache.sh.
///
///     bench-cache --port P [--entries N] [--queries Q] [--naive-queries Q]
@main
struct CacheBenchmark {
    static let dimension = 384

    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var options: [String: String] = [:]
        while arguments.count >= 2 { options[String(arguments.removeFirst().drop { $0 == "-" })] = arguments.removeFirst() }
        func int(_ key: String, _ fallback: Int) -> Int { options[key].flatMap { Int($0) } ?? fallback }
        let entries = int("entries", 100_000), queries = int("queries", 2000), naiveQueries = int("naive-queries", 20)
        let logger = Logger(label: "bench-cache")
        let redis = RedisClient(configuration: .init(port: int("port", 56679), connections: 4, maxBatch: 4096), logger: logger)
        _ = try await redis.send(RedisCommand("FLUSHALL"))

        var random = SplitMix(seed: 42)
        let vectors = (0..<entries).map { _ in unit((0..<dimension).map { _ in random.nextGaussian() }) }
        let questions = (0..<entries).map { "What is the status of order \($0)?" }

        // Load: our entries and the naive store's raw vectors, pipelined.
        let loadStarted = ContinuousClock.now
        for batch in stride(from: 0, to: entries, by: 1000) {
            let range = batch..<min(batch + 1000, entries)
            var commands: [RedisCommand] = []
            for index in range {
                let payload = Array(#"{"answer":"order \#(index) shipped"}"#.utf8)
                commands.append(RedisCommand("SET", SemanticCache.entryKey("bench", "ctx", "e\(index)"),
                                             try SemanticCache.encodedEntry(question: questions[index], vector: vectors[index], payload: payload)))
                commands.append(RedisCommand("SET", "naive:bench:ctx:\(index)", vectors[index].withUnsafeBytes { Array($0) }))
            }
            _ = try await redis.pipeline(commands)
        }
        _ = loadStarted
        // A replica starting on this Redis, as the orchestrator runs it: `warm_s` until sampled
        // lookups hit (entries read, searched by exact scan), `load_s` until every entry is in
        // the graph.
        let cache = SemanticCache(redis: redis, engine: EngineExecutor(threads: 2), logger: logger)
        let indexStarted = ContinuousClock.now
        let replica = Task { try await cache.run() }
        let probes = stride(from: 0, to: entries, by: max(1, entries / 20)).map { $0 }
        var warmSeconds = 0.0
        while true {
            var all = true
            for target in probes {
                let result = try await cache.lookup(tenant: "bench", context: "ctx", question: questions[target], vector: vectors[target], threshold: 0.95)
                guard case .hit = result else { all = false; break }
            }
            if all { warmSeconds = seconds(ContinuousClock.now - indexStarted); break }
            try await Task.sleep(for: .milliseconds(50))
        }
        while cache.pendingCount > 0 { try await Task.sleep(for: .milliseconds(100)) }
        let loadSeconds = seconds(ContinuousClock.now - indexStarted)

        // Queries: paraphrase-like neighbours of stored questions (cosine about 0.97).
        var hits = 0
        var ours: [Double] = []
        for query in 0..<queries {
            let target = (query * 7919) % entries
            let vector = neighbour(of: vectors[target], similarity: 0.97, random: &random)
            let started = ContinuousClock.now
            let result = try await cache.lookup(tenant: "bench", context: "ctx", question: questions[target], vector: vector, threshold: 0.95)
            ours.append(seconds(ContinuousClock.now - started) * 1000)
            if case .hit = result { hits += 1 }
        }

        var naive: [Double] = []
        var naiveHits = 0
        for query in 0..<naiveQueries {
            let target = (query * 7919) % entries
            let vector = neighbour(of: vectors[target], similarity: 0.97, random: &random)
            let started = ContinuousClock.now
            if try await naiveLookup(redis, vector: vector, threshold: 0.95) != nil { naiveHits += 1 }
            naive.append(seconds(ContinuousClock.now - started) * 1000)
        }
        let (p50, p99) = (percentile(ours, 0.5), percentile(ours, 0.99))
        let (n50, n99) = (percentile(naive, 0.5), percentile(naive, 0.99))
        replica.cancel()
        print(String(format: "bench-cache: entries=%d queries=%d hit_rate=%.3f naive_hit_rate=%.3f warm_s=%.1f load_s=%.1f ours_p50_ms=%.3f ours_p99_ms=%.3f naive_p50_ms=%.1f naive_p99_ms=%.1f ratio_p50=%.0f ratio_p99=%.0f",
                     entries, queries, Double(hits) / Double(queries), Double(naiveHits) / Double(max(1, naiveQueries)), warmSeconds, loadSeconds,
                     p50, p99, n50, n99, n50 / p50, n99 / p99))
        await redis.shutdown()
    }

    /// Every vector of the context read from Redis and scored; the best one above the threshold
    /// is the hit, whose entry is then read like ours.
    static func naiveLookup(_ redis: RedisClient, vector: [Float], threshold: Float) async throws -> [UInt8]? {
        var cursor = "0"
        var best: (key: String, score: Float)?
        repeat {
            let reply = try await redis.send(RedisCommand("SCAN", cursor, "MATCH", "naive:bench:ctx:*", "COUNT", 2000))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { break }
            cursor = next
            let keys = parts[1].array?.compactMap(\.string) ?? []
            guard !keys.isEmpty else { continue }
            let values = try await redis.send(RedisCommand("MGET", arguments: keys)).array ?? []
            for (key, value) in zip(keys, values) {
                guard case .bulk(let bytes) = value, bytes.count == dimension * 4 else { continue }
                let score = bytes.withUnsafeBytes { raw in dot(vector, raw.bindMemory(to: Float.self)) }
                if score >= threshold, score > (best?.score ?? -1) { best = (key, score) }
            }
        } while cursor != "0"
        guard let best else { return nil }
        let index = best.key.split(separator: ":").last.map(String.init) ?? ""
        return try await redis.get(SemanticCache.entryKey("bench", "ctx", "e\(index)"))
    }

    static func dot(_ a: [Float], _ b: UnsafeBufferPointer<Float>) -> Float {
        var sum = SIMD16<Float>()
        a.withUnsafeBufferPointer { a in
            var index = 0
            while index + 16 <= a.count {
                sum += SIMD16(a[index..<index + 16]) * SIMD16(b[index..<index + 16])
                index += 16
            }
        }
        return sum.sum()
    }

    static func unit(_ v: [Float]) -> [Float] {
        let norm = (v.reduce(0) { $0 + $1 * $1 }).squareRoot()
        return v.map { $0 / norm }
    }

    static func neighbour(of v: [Float], similarity: Float, random: inout SplitMix) -> [Float] {
        var noise = unit((0..<v.count).map { _ in random.nextGaussian() })
        let along = zip(noise, v).reduce(0) { $0 + $1.0 * $1.1 }
        noise = unit(zip(noise, v).map { $0 - along * $1 })
        return zip(v, noise).map { similarity * $0 + (1 - similarity * similarity).squareRoot() * $1 }
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// A seeded generator, so every run measures the same data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextGaussian() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}
