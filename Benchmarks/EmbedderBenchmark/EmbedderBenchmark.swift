import Foundation
import HTTP
import Logging
import TextEmbedding

/// Sentences per second of the native engine, and of the embedder's HTTP API, run by
/// deploy/dev/bench-embedder.sh beside sentence-transformers on the same sentences.
///
///     bench-embedder --model DIR --sentences FILE --threads N [--batch 32]
///     bench-embedder --url http://127.0.0.1:PORT --sentences FILE --clients 16
///
/// Prints `engine_sps …` and `peak_mb …`, or `http_sps …`.
@main
struct EmbedderBenchmark {
    static func main() async throws {
        var options: [String: String] = [:]
        var arguments = Array(CommandLine.arguments.dropFirst())
        while arguments.count >= 2 {
            options[String(arguments.removeFirst().drop { $0 == "-" })] = arguments.removeFirst()
        }
        guard let file = options["sentences"] else { fatalError("--sentences FILE is required") }
        let sentences = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        if let url = options["url"] {
            try await http(url: url, sentences: sentences, clients: Int(options["clients"] ?? "16") ?? 16)
        } else if let model = options["model"] {
            try engine(model: model, sentences: sentences, threads: Int(options["threads"] ?? "1") ?? 1, batch: Int(options["batch"] ?? "32") ?? 32)
        } else {
            fatalError("usage: bench-embedder --model DIR | --url URL, --sentences FILE")
        }
    }

    static func engine(model: String, sentences: [String], threads: Int, batch: Int) throws {
        // Threads split each batch; every matrix product runs single-threaded.
        MiniLMModel.setThreadCount(1)
        let embedder = try TextEmbedder(modelDirectory: URL(fileURLWithPath: model))
        _ = embedder.embed(Array(sentences.prefix(batch)))  // warm-up: page in the weights
        let start = ContinuousClock.now
        var checksum: Float = 0
        for first in stride(from: 0, to: sentences.count, by: batch) {
            let vectors = embedder.embed(Array(sentences[first..<min(first + batch, sentences.count)]), threads: threads)
            checksum += vectors.reduce(0) { $0 + $1[0] }
        }
        let seconds = seconds(since: start)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("engine_sps \(Int(Double(sentences.count) / seconds))")
        print("peak_mb \(usage.ru_maxrss / 1024)")
        print("checksum \(checksum)")
    }

    /// One sentence per request, `clients` requests in flight, as separate callers would send them.
    static func http(url: String, sentences: [String], clients: Int) async throws {
        let client = HTTPClient(logger: Logger(label: "bench"))
        func body(_ text: String) throws -> [UInt8] {
            Array(try JSONSerialization.data(withJSONObject: ["model": "all-minilm-l6-v2", "input": text]))
        }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<clients {
                group.addTask {
                    for index in stride(from: worker, to: sentences.count, by: clients) {
                        let response = try await client.execute(HTTPRequest(
                            method: "POST", url: url + "/v1/embeddings",
                            headers: [("Content-Type", "application/json")], body: try body(sentences[index])
                        ))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        precondition(response.status == 200, "status \(response.status)")
                    }
                }
            }
            try await group.waitForAll()
        }
        print("http_sps \(Int(Double(sentences.count) / seconds(since: start)))")
        await client.shutdown()
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
