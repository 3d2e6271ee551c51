import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// Where a service puts the usage events it owes `conduit.usage`. `record` never waits: the
/// event joins a bounded queue that one sender empties in batches, retrying a failed send with
/// exponential back-off for as long as the service runs. On graceful shutdown the sender keeps
/// going until the queue is empty or the drain timeout passes; list the outbox after the
/// producer among a service's services so that it drains while the producer still runs.
///
/// An event is given up on only when the queue is full or the drain timeout passes, and each
/// one is counted in `conduit_usage_events_dropped_total{reason}`. Delivery is at least once
/// (a batch whose acknowledgement is lost is sent again); consumers dedupe by `event_id`.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_USAGE_OUTBOX_CAPACITY` | 10000 events queued at most |
/// | `CONDUIT_USAGE_OUTBOX_BATCH` | 500 events per send |
/// | `CONDUIT_USAGE_OUTBOX_DRAIN_S` | 15 (how long shutdown waits for the queue to empty) |
public final class UsageOutbox: Service, Sendable {
    public struct Configuration: Sendable {
        public var topic = KafkaTopic.usage
        public var capacity = 10_000
        public var batchSize = 500
        public var firstBackoff: Duration = .milliseconds(100)
        public var maxBackoff: Duration = .seconds(5)
        public var drainTimeout: Duration = .seconds(15)

        public init(topic: String = KafkaTopic.usage) { self.topic = topic }

        public init(topic: String, environment: ConduitEnvironment) throws {
            self.topic = topic
            capacity = try environment.int("CONDUIT_USAGE_OUTBOX_CAPACITY", default: capacity)
            batchSize = try environment.int("CONDUIT_USAGE_OUTBOX_BATCH", default: batchSize)
            drainTimeout = .seconds(try environment.int("CONDUIT_USAGE_OUTBOX_DRAIN_S", default: 15))
            guard capacity > 0 else { throw ConfigurationError(key: "CONDUIT_USAGE_OUTBOX_CAPACITY", expected: "a positive number") }
            guard batchSize > 0 else { throw ConfigurationError(key: "CONDUIT_USAGE_OUTBOX_BATCH", expected: "a positive number") }
        }
    }

    public let configuration: Configuration
    private let producer: KafkaProducer
    private let logger: Logger
    private let state: Mutex<StateMachine>
    /// Set when graceful shutdown begins: sends failing after it give up.
    private let drainDeadline = Mutex<ContinuousClock.Instant?>(nil)
    private let depth: Gauge
    private let sent: Counter
    private let droppedFull: Counter
    private let droppedAtShutdown: Counter
    private let retries: Counter

    public init(producer: KafkaProducer, configuration: Configuration, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.producer = producer
        self.configuration = configuration
        self.logger = logger
        state = Mutex(StateMachine(capacity: configuration.capacity))
        depth = registry.makeGauge(name: "conduit_usage_outbox_events", help: "Usage events waiting to be sent.")
        sent = registry.makeCounter(name: "conduit_usage_events_sent_total", help: "Usage events the broker acknowledged.")
        let droppedHelp = "Usage events given up on: the outbox was full, or shutdown's drain timeout passed."
        droppedFull = registry.makeCounter(name: "conduit_usage_events_dropped_total", labels: [("reason", "full")], help: droppedHelp)
        droppedAtShutdown = registry.makeCounter(name: "conduit_usage_events_dropped_total", labels: [("reason", "shutdown")], help: droppedHelp)
        retries = registry.makeCounter(name: "conduit_usage_send_retries_total", help: "Failed sends of a batch of usage events, each retried.")
    }

    /// Queues `event` for sending; never waits.
    public func record(_ event: UsageEvent) {
        switch state.withLock({ $0.enqueue(event) }) {
        case .queued(let wake):
            depth.increment()
            wake?.resume()
        case .refused:
            droppedFull.increment()
            logger.error("usage outbox full; event given up", metadata: [LogKey.requestID: "\(event.requestID)"])
        case .closed:
            droppedAtShutdown.increment()
            logger.error("usage event after the outbox closed; given up", metadata: [LogKey.requestID: "\(event.requestID)"])
        }
    }

    /// Events waiting to be sent.
    public var queued: Int { state.withLock { $0.pending.count } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await sendUntilDrained()
        } onGracefulShutdown: {
            self.drainDeadline.withLock { $0 = .now + self.configuration.drainTimeout }
            self.state.withLock { $0.drain() }?.resume()
        }
    }

    private func sendUntilDrained() async {
        var backoff = configuration.firstBackoff
        while true {
            let batch = state.withLock { $0.take(configuration.batchSize) }
            if batch.isEmpty {
                if state.withLock({ $0.closeIfDrained() }) { return }
                await withCheckedContinuation { continuation in
                    if case .resume(let continuation) = state.withLock({ $0.park(continuation) }) { continuation.resume() }
                }
                continue
            }
            do {
                _ = try await producer.send(batch: try messages(batch))
                sent.increment(by: Int64(batch.count))
                depth.decrement(by: Double(batch.count))
                backoff = configuration.firstBackoff
            } catch {
                retries.increment()
                if let limit = drainDeadline.withLock({ $0 }), ContinuousClock.now >= limit {
                    let left = batch.count + state.withLock { $0.abandon() }
                    droppedAtShutdown.increment(by: Int64(left))
                    depth.decrement(by: Double(left))
                    logger.error("usage events given up at shutdown", metadata: ["events": "\(left)", LogKey.error: "\(error)"])
                    return
                }
                let overflow = state.withLock { $0.putBack(batch) }
                if overflow > 0 {
                    droppedFull.increment(by: Int64(overflow))
                    depth.decrement(by: Double(overflow))
                }
                logger.warning("usage events not sent; retrying", metadata: ["events": "\(batch.count)", LogKey.error: "\(error)"])
                // Shutdown cancels nothing here (graceful shutdown is not cancellation).
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, configuration.maxBackoff)
            }
        }
    }

    private func messages(_ batch: [UsageEvent]) throws -> [KafkaOutgoingMessage] {
        let encoder = EventCoding.encoder()
        return try batch.map { KafkaOutgoingMessage(topic: configuration.topic, key: Array($0.requestID.utf8), value: Array(try encoder.encode($0))) }
    }
}

extension UsageOutbox: UsageRecorder {}
