import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Postgres
import Prometheus
import ServiceLifecycle

/// Reads `conduit.usage` (its own consumer group) and keeps, for every request an experiment
/// served, its variant, latency, cost, tokens and whether it failed (`prompts.outcomes`, one
/// row per request id, so a replay changes nothing). Events of no experiment are passed over;
/// malformed ones are the cost-service's to dead-letter: here they are counted and skipped.
/// Offsets are marked only once the row is stored.
struct OutcomeConsumer: Service {
    let consumer: KafkaConsumer
    let postgres: PostgresClient
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    var concurrency = 4

    func run() async throws {
        try await consumer.forEachMessageConcurrently(limit: concurrency) { message in
            if let event = try? EventCoding.decoder().decode(UsageEvent.self, from: Data(message.value)) {
                if let experiment = event.experimentID, let variant = event.variant {
                    try await retryUntilCancelled(logger: logger, "recording an experiment outcome") {
                        try await record(event, experiment: experiment, variant: variant)
                    }
                    counter("recorded").increment()
                } else {
                    counter("other").increment()
                }
            } else {
                counter("malformed").increment()
            }
            do { try consumer.markDurable(message) } catch { logger.debug("offset not stored (partition moved?)") }
        }
    }

    func record(_ event: UsageEvent, experiment: String, variant: String) async throws {
        // Text with NUL cannot be stored; such an event would fail on every retry.
        guard ![event.tenant, event.requestID, experiment, variant].contains(where: { $0.utf8.contains(0) }) else { return }
        try await postgres.query("""
            INSERT INTO prompts.outcomes (tenant_id, request_id, experiment_id, variant, version, latency_ms, cost_usd, tokens, failed, occurred_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, request_id) DO NOTHING
            """, event.tenant, event.requestID, experiment, variant, event.promptVersion, event.latencyMilliseconds.map(Double.init),
            event.costUSD, min(Int(Int32.max), event.promptTokens + event.completionTokens), event.status != "ok", event.timestamp)
    }

    func counter(_ outcome: String) -> Counter {
        registry.makeCounter(name: "prompt_registry_usage_events_total", labels: [("outcome", outcome)],
                             help: "Usage events read by the registry: recorded (an experiment's), other, malformed (skipped).")
    }
}
