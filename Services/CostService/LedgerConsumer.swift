import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Prometheus
import ServiceLifecycle

/// Consumes `conduit.usage` into the ledger: each event is recorded once, by its event id, with
/// its day's rollup; only then is its offset marked for commit (in order, up to `concurrency`
/// events recorded at once), so a crash replays it and the replay changes nothing. An event that cannot be recorded as it is (not JSON, an unknown
/// schema, negative tokens or cost) goes to `conduit.usage.dlq` with the reason.
struct LedgerConsumer: Service {
    let consumer: KafkaConsumer
    let dlq: DeadLetterQueue
    let ledger: any UsageLedger
    let metrics: Metrics
    let logger: Logger

    /// Events recorded at once: each waits on Postgres, not on the CPU.
    var concurrency = 8

    func run() async throws {
        try await consumer.forEachMessageConcurrently(limit: concurrency) { try await handle($0) }
    }

    func handle(_ message: KafkaMessage) async throws {
        try await consumer.settle(message, deadLetters: dlq, service: "cost-service", logger: logger) {
            let event = try Self.decode(message.value)
            let recorded = try await retryUntilCancelled(logger: logger, "recording a usage event") { try await ledger.record(event) }
            metrics.events(recorded ? "recorded" : "replayed").increment()
        }
    }

    static func decode(_ value: [UInt8]) throws -> UsageEvent {
        let event = try MessageRejection.decoding(UsageEvent.self, from: value, what: "usage event", decoder: EventCoding.decoder())
        guard event.schemaVersion == UsageEvent.currentSchemaVersion else {
            throw MessageRejection(reason: "unsupported schema_version \(event.schemaVersion)")
        }
        for (field, value) in [("event_id", event.eventID), ("tenant", event.tenant), ("kind", event.kind), ("model", event.model), ("status", event.status)]
        where value.isEmpty {
            throw MessageRejection(reason: "'\(field)' must not be empty")
        }
        // Postgres text holds no NUL: such a row would fail on every retry.
        let texts = [event.eventID, event.requestID, event.tenant, event.kind, event.model, event.status] +
            [event.keyID, event.team, event.user, event.servedModel, event.deployment, event.provider].compactMap { $0 } + (event.tags ?? [])
        if texts.contains(where: { $0.utf8.contains(0) }) {
            throw MessageRejection(reason: "text fields must not contain NUL")
        }
        // Every integer column is a Postgres `integer`: a value past it would fail the insert on
        // every retry and hold the partition, so it is refused here instead.
        let integers = [("prompt_tokens", event.promptTokens), ("completion_tokens", event.completionTokens),
                        ("cached_tokens", event.cachedTokens ?? 0), ("reasoning_tokens", event.reasoningTokens ?? 0),
                        ("latency_ms", event.latencyMilliseconds ?? 0), ("ttft_ms", event.timeToFirstTokenMilliseconds ?? 0)]
        if let (field, _) = integers.first(where: { !(0...Int(Int32.max)).contains($0.1) }) {
            throw MessageRejection(reason: "'\(field)' must be between 0 and \(Int32.max)")
        }
        for (field, amount) in [("cost_usd", event.costUSD), ("saved_usd", event.savedUSD)] {
            if let amount, !(amount.isFinite && amount >= 0 && amount < 1e9) {
                throw MessageRejection(reason: "'\(field)' must be a finite amount between 0 and 1e9")
            }
        }
        return event
    }

    struct Metrics: Sendable {
        let registry: PrometheusCollectorRegistry

        init(registry: PrometheusCollectorRegistry) {
            self.registry = registry
            for outcome in ["recorded", "replayed"] { _ = events(outcome) }
        }

        /// `cost_ledger_events_total{outcome="recorded"|"replayed"}`: replays are events seen again
        /// after a restart or rebalance, recorded once all the same.
        func events(_ outcome: String) -> Counter {
            registry.makeCounter(name: "cost_ledger_events_total", labels: [("outcome", outcome)],
                                 help: "Usage events consumed into the ledger, by whether they were new or replays.")
        }
    }
}
