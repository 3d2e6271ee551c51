import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Prometheus
import ServiceLifecycle

/// Counts the platform's events by topic and kind, and turns usage and alert events into the
/// `llm_*` metrics (`UsageMetrics`, `AlertMetrics`). A value that is not a JSON object with a
/// `schema_version` (or a usage or alert event that does not decode) is counted as malformed
/// and skipped; every offset is
/// committed once counted, so a restart counts again at most what was counted since the last
/// commit (a second or so: the consumer's commit interval).
struct EventCounter: Service {
    /// The topics read; each event is typed by the topic it came from.
    struct Topics: Sendable {
        var usage = KafkaTopic.usage
        var audit = KafkaTopic.audit
        var alerts = KafkaTopic.alerts
    }

    let consumer: KafkaConsumer
    let registry: PrometheusCollectorRegistry
    let usage: UsageMetrics
    var topics = Topics()
    var alerts: AlertMetrics?
    let logger: Logger
    /// Event kinds are free text on the wire: bounded like every label.
    let kinds = LabelLimiter(limit: 64)
    /// Used by `record` only, one event at a time.
    let decoder = EventCoding.decoder()

    func run() async throws {
        do {
            try await countUntilShutdown()
        } catch is CancellationError {
            // Graceful shutdown: leaving the loop ends the consumer's stream, which then commits and closes.
        }
    }

    private func countUntilShutdown() async throws {
        try await cancelWhenGracefulShutdown {
            for try await message in consumer.messages {
                record(message)
                do {
                    try consumer.markDurable(message)
                } catch {
                    logger.debug("offset not stored", metadata: [LogKey.error: "\(error)"])
                }
            }
        }
    }

    /// What every event carries: its schema version and, for the count, a kind (audit events
    /// name it `action`).
    private struct Envelope: Decodable {
        var schemaVersion: Int
        var kind: String?
        var action: String?

        enum CodingKeys: String, CodingKey {
            case kind, action
            case schemaVersion = "schema_version"
        }
    }

    /// One decode per event: usage and alert events straight into their types, others into
    /// the envelope only.
    func record(_ message: KafkaMessage) {
        let data = Data(message.value)
        let kind: String?
        switch message.topic {
        case topics.usage:
            guard let event = try? decoder.decode(UsageEvent.self, from: data) else { return malformed(message) }
            usage.record(event)
            kind = event.kind
        case topics.alerts where alerts != nil:
            guard let event = try? decoder.decode(AlertEvent.self, from: data) else { return malformed(message) }
            alerts?.record(event)
            kind = event.kind
        default:
            guard let envelope = try? decoder.decode(Envelope.self, from: data) else { return malformed(message) }
            kind = envelope.kind ?? envelope.action
        }
        registry.makeCounter(
            descriptor: .init(namespace: "conduit", subsystem: "events", metricName: "consumed", unitName: "total", helpText: "Events consumed, by topic and kind."),
            labels: [("topic", message.topic), ("kind", kinds.value(kind ?? "event"))]
        ).increment()
    }

    private func malformed(_ message: KafkaMessage) {
        registry.makeCounter(
            descriptor: .init(namespace: "conduit", subsystem: "events", metricName: "malformed", unitName: "total", helpText: "Events that could not be read."),
            labels: [("topic", message.topic)]
        ).increment()
    }
}
