import Kafka
import Logging
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
        } catch {
            try Task.checkCancellation()
            logger.warning("\(what) failed; retrying", metadata: [LogKey.error: "\(error)"])
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}
