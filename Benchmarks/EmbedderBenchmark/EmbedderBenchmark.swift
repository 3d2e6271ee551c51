import Foundation
import TextEmbedding

/// Sentences per second of the native engine, run by deploy/dev/bench-embedder.sh beside
/// sentence-transformers on the same sentences and thread counts.
///
///     bench-embedder --model DIR --sentences FILE --threads N [--batch 32]
///
/// Prints `engine_sps <sentences per second>` and `peak_mb <resident set high-water mark>`.
@main
struct EmbedderBenchmark {
    static func main() throws {
        var options: [String: String] = [:]
        var arguments = Array(CommandLine.arguments.dropFirst())
        while arguments.count >= 2 {
            options[String(arguments.removeFirst().drop { $0 == "-" })] = arguments.removeFirst()
        }
        guard let model = options["model"], let file = options["sentences"] else {
            fatalError("usage: bench-embedder --model DIR --sentences FILE --threads N [--batch 32]")
        }
        let threads = Int(options["threads"] ?? "1") ?? 1
        let batch = Int(options["batch"] ?? "32") ?? 32
        let sentences = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        // Threads split the batch; each product runs single-threaded.
        MiniLMModel.setThreadCount(1)
        let embedder = try TextEmbedder(modelDirectory: URL(fileURLWithPath: model))
        _ = embedder.embed(Array(sentences.prefix(batch)))  // warm-up: page in the weights
        let start = ContinuousClock.now
        var checksum: Float = 0
        for first in stride(from: 0, to: sentences.count, by: batch) {
            let vectors = embedder.embed(Array(sentences[first..<min(first + batch, sentences.count)]), threads: threads)
            checksum += vectors.reduce(0) { $0 + $1[0] }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("engine_sps \(Int(Double(sentences.count) / seconds))")
        print("peak_mb \(usage.ru_maxrss / 1024)")
        print("checksum \(checksum)")
    }
}
