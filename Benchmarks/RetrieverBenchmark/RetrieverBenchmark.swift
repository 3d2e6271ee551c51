import Foundation
import SearchEngine

/// The HNSW index on vectors and queries written by deploy/dev/bench-retriever.sh (raw
/// little-endian float32, row after row), with the same parameters hnswlib gets there.
///
///     bench-retriever --data FILE --queries FILE --dimension D --truth FILE [--m 16 --ef-construction 200 --ef 64 --k 10]
///
/// Prints `build_seconds`, `qps` (one thread) and `recall` against the exact top k in `--truth`
/// (int32 ids, k per query).
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
        let data = try floats(options["data"]!, dimension: dimension)
        let queries = try floats(options["queries"]!, dimension: dimension)
        let truth = try Data(contentsOf: URL(fileURLWithPath: options["truth"]!)).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }

        let index = VectorIndex(dimension: dimension, parameters: .init(m: int("m", 16), efConstruction: int("ef-construction", 200), efSearch: int("ef", 64)))
        var start = ContinuousClock.now
        for (number, vector) in data.enumerated() { index.upsert(id: String(number), vector: vector) }
        print("build_seconds \(seconds(since: start))")

        start = ContinuousClock.now
        var found = 0
        for (number, query) in queries.enumerated() {
            let expected = Set(truth[(number * k)..<((number + 1) * k)].map { String($0) })
            found += index.search(query, k: k).filter { expected.contains($0.id) }.count
        }
        print("qps \(Int(Double(queries.count) / seconds(since: start)))")
        print("recall \(Double(found) / Double(queries.count * k))")
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
