import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import Prometheus
import ServiceLifecycle

extension KafkaConsumer {
    /// Hands every message to `handle`, one at a time, until graceful shutdown; the consumer
    /// then commits what was marked durable and leaves its group.
    public func forEachMessageUntilShutdown(_ handle: @escaping @Sendable (KafkaMessage) async throws -> Void) async throws {
        do {
            try await cancelWhenGracefulShutdown {
                for try await message in self.messages { try await handle(message) }
            }
        } catch is CancellationError {
            // Graceful shutdown.
        }
    }
}

/// Runs `work` until it succeeds, waiting 100 ms after the first failure and doubling up to 5 s;
/// only cancellation (shutdown) ends it. For consumers that hold an event they must not skip
/// while a passing failure (database, broker, a full queue) lasts.
@discardableResult
public func retryUntilCancelled<T: Sendable>(logger: Logger, _ what: String, _ work: () async throws -> T) async throws -> T {
    var delay = Duration.milliseconds(100)
    while true {
        do {
            return try await work()
        } catch let rejection as MessageRejection {
            // Retrying cannot fix what the message itself gets wrong: it goes to the DLQ.
            throw rejection
        } catch {
            try Task.checkCancellation()
            logger.warning("\(what) failed; retrying", metadata: [LogKey.error: "\(error)"])
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}

/// Why a consumed message cannot be processed; `reason` goes into its dead-letter record.
public struct MessageRejection: Error, Sendable {
    public let reason: String
    public init(reason: String) { self.reason = reason }

    /// `value` decoded as `type`, or the rejection that says why not: "invalid <what>: " and the
    /// field at fault (`DecodingProblem`), or that it is not JSON at all.
    public static func decoding<T: Decodable>(_ type: T.Type, from value: [UInt8], what: String, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        do {
            return try decoder.decode(type, from: Data(value))
        } catch let error as DecodingError {
            throw MessageRejection(reason: "invalid \(what): \(DecodingProblem.message(error, subject: "The event"))")
        } catch {
            throw MessageRejection(reason: "invalid \(what): not JSON")
        }
    }
}

extension KafkaConsumer {
    /// Processes one message the way every Conduit consumer does: `work` runs; if it rejects the
    /// message, the message goes to `deadLetters` with the reason (retried until the broker has
    /// it); either way its offset is then marked durable. Other errors propagate (and stop the
    /// consumer) without marking anything, so the message is seen again.
    public func process(
        _ message: KafkaMessage, deadLetters: DeadLetterQueue, service: String, logger: Logger, registry: PrometheusCollectorRegistry? = nil,
        _ work: () async throws -> Void
    ) async throws {
        try await settle(message, deadLetters: deadLetters, service: service, logger: logger, registry: registry, work)
        do {
            try markDurable(message)
        } catch {
            logger.debug("offset not stored (partition moved?)", metadata: [LogKey.error: "\(error)"])
        }
    }
}

extension KafkaConsumer {
    /// Like `forEachMessageUntilShutdown`, with up to `limit` messages handled at once (for work
    /// that waits on a database rather than on the CPU). `handle` returns when the message's
    /// effect is durable (or it was dead-lettered); offsets are marked in order per partition
    /// (`InOrderMarks`). An error of `handle` stops the loop after the messages running finish,
    /// unmarked from the failed one on, so they are seen again.
    public func forEachMessageConcurrently(limit: Int, _ handle: @escaping @Sendable (KafkaMessage) async throws -> Void) async throws {
        let marks = NIOLockedValueBox(InOrderMarks())
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var running = 0
                    for try await message in self.messages {
                        if running >= max(1, limit) {
                            try await group.next()
                            running -= 1
                        }
                        marks.withLockedValue { $0.started(message) }
                        group.addTask {
                            try await handle(message)
                            for ready in marks.withLockedValue({ $0.finished(message) }) {
                                try? self.markDurable(ready)
                            }
                        }
                        running += 1
                    }
                    try await group.waitForAll()
                }
            }
        } catch is CancellationError {
            // Graceful shutdown.
        }
    }

    /// `process` without the marking: `work` runs, a rejected message goes to `deadLetters`; the
    /// caller marks the offset (`forEachMessageConcurrently` does, in order). With a `registry`,
    /// `conduit_kafka_messages_total{topic,outcome}` counts each message as `processed` or
    /// `dead_lettered` (what indexing throughput and DLQ growth are charted from).
    public func settle(
        _ message: KafkaMessage, deadLetters: DeadLetterQueue, service: String, logger: Logger, registry: PrometheusCollectorRegistry? = nil,
        _ work: () async throws -> Void
    ) async throws {
        do {
            try await work()
            count(message, outcome: "processed", in: registry)
        } catch let rejection as MessageRejection {
            try await retryUntilCancelled(logger: logger, "dead-lettering a message") {
                try await deadLetters.send(message, reason: rejection.reason, service: service)
            }
            count(message, outcome: "dead_lettered", in: registry)
            logger.warning("message rejected", metadata: ["reason": "\(rejection.reason)", "offset": "\(message.offset)"])
        }
    }

    private func count(_ message: KafkaMessage, outcome: String, in registry: PrometheusCollectorRegistry?) {
        registry?.makeCounter(
            descriptor: .init(namespace: "conduit", subsystem: "kafka", metricName: "messages", unitName: "total",
                              helpText: "Consumed messages by topic and outcome (processed, dead_lettered)."),
            labels: [("topic", message.topic), ("outcome", outcome)]
        ).increment()
    }
}
