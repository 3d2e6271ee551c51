import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import TextEmbedding

/// Merges concurrent embedding requests into token-budgeted batches and runs them on a
/// dedicated thread, never on an event loop or the cooperative pool.
final class EmbeddingBatcher: Service, Sendable {
    struct Configuration: Sendable {
        /// Tokens in one forward pass at most. Default 8192.
        var maxBatchTokens = 8192
        /// Tokens waiting at most; beyond this requests get 429. Default 65536.
        var maxQueuedTokens = 65_536
        /// How long the first request of a batch may wait for company. Default 2 ms.
        var maxWait: Duration = .microseconds(2000)
        /// Threads one batch is split across. Default 2.
        var threads = 2
    }

    struct Overloaded: Error {}
    struct ShutDown: Error {}

    /// One request: its sequences, and the caller waiting for their vectors.
    struct Job: Sendable {
        let sequences: [[Int]]
        let continuation: CheckedContinuation<[[Float]], any Error>
    }

    let model: MiniLMModel
    let modelName: String
    private let configuration: Configuration
    private let logger: Logger
    private let registry: PrometheusCollectorRegistry
    private let condition = NSCondition()
    // `nonisolated(unsafe)`: both are read and written only between `condition.lock()` and
    // `condition.unlock()`, so every access is ordered by that lock.
    private nonisolated(unsafe) var state: StateMachine<Job>
    private nonisolated(unsafe) var stopping = false

    init(model: MiniLMModel, modelName: String, configuration: Configuration, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.model = model
        self.modelName = modelName
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        state = StateMachine(maxBatchTokens: configuration.maxBatchTokens, maxQueuedTokens: configuration.maxQueuedTokens, maxWait: configuration.maxWait)
    }

    /// Runs the batching thread until graceful shutdown; queued requests then fail.
    func run() async throws {
        let thread = Thread { [self] in loop() }
        thread.name = "embedder-batcher"
        thread.start()
        try? await gracefulShutdown()
        stop()
    }

    /// Stops the thread after its current batch and fails what is still queued.
    func stop() {
        condition.lock()
        stopping = true
        let abandoned = state.drainAll()
        condition.broadcast()
        condition.unlock()
        abandoned.forEach { $0.continuation.resume(throwing: ShutDown()) }
    }

    /// Embeds the sequences, waiting for a batch; throws `Overloaded` when the queue is full.
    /// A request larger than one batch goes in parts of at most `maxBatchTokens`, one part at a
    /// time, so no forward pass (and no request) holds more than one batch of activations and a
    /// big request never crowds the queue out for everyone else.
    func embed(_ sequences: [[Int]]) async throws -> [[Float]] {
        var vectors: [[Float]] = []
        vectors.reserveCapacity(sequences.count)
        for part in Self.parts(of: sequences, maxTokens: configuration.maxBatchTokens) {
            vectors += try await embedPart(Array(sequences[part]))
        }
        return vectors
    }

    /// Consecutive ranges of `sequences`, each within `maxTokens` (a single longer sequence
    /// stands alone).
    static func parts(of sequences: [[Int]], maxTokens: Int) -> [Range<Int>] {
        var parts: [Range<Int>] = []
        var start = 0
        var tokens = 0
        for (index, sequence) in sequences.enumerated() {
            if index > start, tokens + sequence.count > maxTokens {
                parts.append(start..<index)
                start = index
                tokens = 0
            }
            tokens += sequence.count
        }
        if start < sequences.count { parts.append(start..<sequences.count) }
        return parts
    }

    private func embedPart(_ sequences: [[Int]]) async throws -> [[Float]] {
        let tokens = sequences.reduce(0) { $0 + $1.count }
        return try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(throwing: ShutDown())
                return
            }
            let action = state.enqueue(Job(sequences: sequences, continuation: continuation), tokens: tokens, now: .now)
            let queued = state.queuedTokens
            condition.signal()
            condition.unlock()
            gauge("queued_tokens").record(Double(queued))
            if case .rejected(let job) = action { job.continuation.resume(throwing: Overloaded()) }
        }
    }

    private func loop() {
        while true {
            condition.lock()
            var batch: [Job]?
            while batch == nil {
                if stopping {
                    condition.unlock()
                    return
                }
                switch state.next(now: .now) {
                case .run(let jobs):
                    batch = jobs
                case .wait(let deadline):
                    let remaining = deadline - .now
                    let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
                    _ = condition.wait(until: Date().addingTimeInterval(max(seconds, 0)))
                case .idle:
                    condition.wait()
                }
            }
            let queued = state.queuedTokens
            condition.unlock()
            gauge("queued_tokens").record(Double(queued))
            if let batch { run(batch) }
        }
    }

    private func run(_ jobs: [Job]) {
        let sequences = jobs.flatMap(\.sequences)
        let tokens = sequences.reduce(0) { $0 + $1.count }
        let start = ContinuousClock.now
        let vectors = model.embed(sequences, threads: configuration.threads)
        let elapsed = ContinuousClock.now - start
        var offset = 0
        for job in jobs {
            job.continuation.resume(returning: Array(vectors[offset..<offset + job.sequences.count]))
            offset += job.sequences.count
        }
        let labels = [("model", modelName)]
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "conduit", subsystem: "embedder", metricName: "inference_duration", unitName: "seconds", helpText: "Time of one batched forward pass."),
            labels: labels,
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)]
        ).record(elapsed)
        registry.makeValueHistogram(
            descriptor: .init(namespace: "conduit", subsystem: "embedder", metricName: "batch_inputs", unitName: "", helpText: "Inputs per batch."),
            labels: labels, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        ).record(Double(sequences.count))
        registry.makeValueHistogram(
            descriptor: .init(namespace: "conduit", subsystem: "embedder", metricName: "batch_tokens", unitName: "", helpText: "Tokens per batch."),
            labels: labels, buckets: [16, 64, 256, 1024, 2048, 4096, 8192, 16384]
        ).record(Double(tokens))
        registry.makeCounter(
            descriptor: .init(namespace: "conduit", subsystem: "embedder", metricName: "tokens_embedded", unitName: "total", helpText: "Tokens embedded."),
            labels: labels
        ).increment(by: Int64(tokens))
    }

    private func gauge(_ name: String) -> Gauge {
        registry.makeGauge(
            descriptor: .init(namespace: "conduit", subsystem: "embedder", metricName: name, unitName: "", helpText: "Tokens waiting for a batch."),
            labels: [("model", modelName)]
        )
    }
}
