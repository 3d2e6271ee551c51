import ConduitKit
import ConduitProtocol
import Foundation
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
        _ message: KafkaMessage, deadLetters: DeadLetterQueue, service: String, logger: Logger,
        _ work: () async throws -> Void
    ) async throws {
        do {
            try await work()
        } catch let rejection as MessageRejection {
            try await retryUntilCancelled(logger: logger, "dead-lettering a message") {
                try await deadLetters.send(message, reason: rejection.reason, service: service)
            }
            logger.warning("message rejected", metadata: ["reason": "\(rejection.reason)", "offset": "\(message.offset)"])
        }
        do {
            try markDurable(message)
        } catch {
            logger.debug("offset not stored (partition moved?)", metadata: [LogKey.error: "\(error)"])
        }
    }
}
