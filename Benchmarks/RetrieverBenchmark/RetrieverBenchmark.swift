import Foundation
import SearchEngine

/// The retriever engine on files written by deploy/dev/bench-retriever.sh (raw little-endian
/// float32 rows; int32 exact top-k ids; one text per line), with the parameters hnswlib and
/// faiss get there.
///
///     bench-retriever --data FILE --queries FILE --truth FILE --texts FILE --text-queries FILE
///                     [--dimension 384 --m 16 --ef-construction 200 --efs 16,32,64 --k 10]
///
/// Prints, per quantization (`fp32`, `int8`): `build_seconds`, `memory_bytes` (resident growth
/// while building), then one `ef E qps Q recall R` line per efSearch (one thread, best of
/// `--repeats` passes, default 5). Then
/// `keyword_ms p50 p99` and `hybrid_ms p50 p99` over the texts.
@main
struct RetrieverBenchmark {
    static func main() throws {
        var options: [String: String] = [:]
        var arguments = Array(CommandLine.arguments.dropFirst())
        while arguments.count >= 2 {
            options[String(arguments.removeFirst().drop { $0 == "-" })] = arguments.removeFirst()
        }
        func int(_ key: String, _ fallback: Int) -> Int { options[key].flatMap { Int($0) } ?? fallback }
        let dimension = int("dimension", 384)
        let k = int("k", 10)
        let efs = (options["efs"] ?? "16,32,64,128").split(separator: ",").compactMap { Int($0) }
        let data = try floats(options["data"]!, dimension: dimension)
        let queries = try floats(options["queries"]!, dimension: dimension)
        let truth = try Data(contentsOf: URL(fileURLWithPath: options["truth"]!)).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }

        // One quantization per process (`--quantization none|int8`), so the allocator's reuse of
        // one index's freed memory cannot flatter the other's resident growth.
        let quantizations = options["quantization"].flatMap(VectorIndex.Quantization.init(rawValue:)).map { [$0] }
            ?? VectorIndex.Quantization.allCases
        var fp32: VectorIndex?
        for quantization in quantizations {
            let parameters = VectorIndex.Parameters(m: int("m", 16), efConstruction: int("ef-construction", 200), quantization: quantization)
            let before = residentBytes()
            var start = ContinuousClock.now
            // Sized up front, as the retriever does when it loads a collection.
            let index: VectorIndex
            // `--snapshot-dir D` reuses a graph saved by an earlier run (for profiling the queries).
            let snapshot = options["snapshot-dir"].map { URL(fileURLWithPath: $0).appendingPathComponent("\(quantization.rawValue).snap") }
            if let snapshot, FileManager.default.fileExists(atPath: snapshot.path) {
                index = try VectorIndex.load(from: snapshot)
            } else {
                index = VectorIndex(dimension: dimension, parameters: parameters, capacity: data.count)
                for (number, vector) in data.enumerated() { index.upsert(label: UInt32(number), vector: vector) }
                if let snapshot { try index.write(to: snapshot) }
            }
            let name = quantization == .none ? "fp32" : "int8"
            print("\(name) build_seconds \(seconds(since: start)) memory_bytes \(residentBytes() - before) accounted_bytes \(index.memoryBytes)")
            // Best of `repeats` passes per efSearch (the anchors get the same), which damps the
            // noise of a shared machine; recall is the same every pass.
            let repeats = int("repeats", 5)
            for ef in efs {
                var best = 0.0
                var found = 0
                for _ in 0..<repeats {
                    start = ContinuousClock.now
                    found = 0
                    for (number, query) in queries.enumerated() {
                        let expected = Set(truth[(number * k)..<((number + 1) * k)].map { UInt32($0) })
                        found += index.search(query, k: k, ef: ef).filter { expected.contains($0.label) }.count
                    }
                    best = max(best, Double(queries.count) / seconds(since: start))
                }
                print("\(name) ef \(ef) qps \(Int(best)) recall \(Double(found) / Double(queries.count * k))")
            }
            if quantization == .none { fp32 = index }
        }

        guard options["quantization"] != "int8", let textsPath = options["texts"], let textQueriesPath = options["text-queries"], let index = fp32 else { return }
        let texts = try String(contentsOfFile: textsPath, encoding: .utf8).split(separator: "\n").map(String.init)
        let textQueries = try String(contentsOfFile: textQueriesPath, encoding: .utf8).split(separator: "\n").map(String.init)
        var keyword = KeywordIndex()
        var start = ContinuousClock.now
        for (number, text) in texts.enumerated() { keyword.upsert(label: UInt32(number), text: text) }
        print("keyword build_seconds \(seconds(since: start)) documents \(keyword.count)")
        let ef = int("hybrid-ef", 64)
        var keywordTimes: [Double] = []
        var hybridTimes: [Double] = []
        for (number, text) in textQueries.enumerated() {
            start = ContinuousClock.now
            _ = keyword.search(text, limit: k)
            keywordTimes.append(seconds(since: start))
            start = ContinuousClock.now
            let vector = index.search(queries[number % queries.count], k: 5 * k, ef: max(ef, 5 * k))
            let words = keyword.search(text, limit: 5 * k)
            _ = RankFusion.reciprocalRank([
                "vector": vector.map { ($0.label, Double($0.score)) },
                "keyword": words.map { ($0.label, $0.score) },
            ], limit: k)
            hybridTimes.append(seconds(since: start))
        }
        print("keyword_ms \(percentile(keywordTimes, 0.5) * 1000) \(percentile(keywordTimes, 0.99) * 1000)")
        print("hybrid_ms \(percentile(hybridTimes, 0.5) * 1000) \(percentile(hybridTimes, 0.99) * 1000)")
    }

    static func percentile(_ values: [Double], _ share: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * share))]
    }

    static func residentBytes() -> Int {
        let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func floats(_ path: String, dimension: Int) throws -> [[Float]] {
        let all = try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return stride(from: 0, to: all.count, by: dimension).map { Array(all[$0..<($0 + dimension)]) }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
