@testable import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import Kafka
import Logging
import Prometheus
import ServiceLifecycle
import Testing
import TestSupport

/// The usage outbox: bounded, ordered, drained on shutdown, and honest about what it gives up.
@Suite(.timeLimit(.minutes(3)))
struct UsageOutboxTests {
    static func event(_ number: Int) -> UsageEvent {
        UsageEvent(requestID: "req-\(number)", tenant: "t", kind: "chat", model: "m", promptTokens: number, completionTokens: 0, status: "ok", timestamp: Date())
    }

    @Test func theQueueIsBoundedAndFailedBatchesGoBackFirst() {
        var machine = UsageOutbox.StateMachine(capacity: 3)
        for number in 0..<3 { guard case .queued = machine.enqueue(Self.event(number)) else { Issue.record("refused \(number)"); return } }
        guard case .refused = machine.enqueue(Self.event(3)) else { Issue.record("a fourth event fit in three places"); return }
        let batch = machine.take(2)
        #expect(batch.map(\.requestID) == ["req-0", "req-1"])
        _ = machine.enqueue(Self.event(4))
        // Only one of the two fits back; the older one goes first.
        #expect(machine.putBack(batch) == 1)
        #expect(machine.take(10).map(\.requestID) == ["req-0", "req-2", "req-4"])
        // Once the sender has stopped, nothing is queued for no one.
        machine.close()
        guard case .closed = machine.enqueue(Self.event(5)) else { Issue.record("queued after the sender stopped"); return }
    }

    static func metric(_ registry: PrometheusCollectorRegistry, _ line: String) -> Bool {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self).split(separator: "\n").contains { $0 == line }
    }

    @Test func everyEventRecordedBeforeShutdownReachesTheTopic() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.usage")
        let logger = Logger(label: "outbox-test")
        let producer = KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "outbox-test")), logger: logger)
        let registry = PrometheusCollectorRegistry()
        var configuration = UsageOutbox.Configuration(topic: topic)
        configuration.batchSize = 100
        let outbox = UsageOutbox(producer: producer, configuration: configuration, registry: registry, logger: logger)
        let group = ServiceGroup(services: [producer, outbox], logger: logger)
        let running = Task { try await group.run() }
        for number in 0..<1_050 { outbox.record(Self.event(number)) }
        // Shutdown right away: whatever is still queued is sent before the producer stops.
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(outbox.queued == 0)
        let events = try await TestEnvironment.readMessages(topic, count: 1_050).map { try EventCoding.decoder().decode(UsageEvent.self, from: Data($0.value)) }
        #expect(Set(events.map(\.eventID)).count == 1_050)
        #expect(Self.metric(registry, "conduit_usage_events_sent_total 1050"))
        #expect(Self.metric(registry, #"conduit_usage_events_dropped_total{reason="shutdown"} 0"#))
    }

    @Test func aBrokerThatNeverAnswersIsRetriedUntilTheDrainTimeoutThenCounted() async throws {
        let logger = Logger(label: "outbox-test")
        // Nothing listens on port 9: every send fails.
        let kafka = KafkaConfiguration(bootstrapServers: "127.0.0.1:9", clientID: "outbox-test")
        let producer = KafkaProducer(configuration: .init(kafka: kafka, deliveryTimeoutMilliseconds: 500, flushTimeoutMilliseconds: 500), logger: logger)
        let registry = PrometheusCollectorRegistry()
        var configuration = UsageOutbox.Configuration(topic: "conduit.test.nowhere")
        configuration.drainTimeout = .seconds(1)
        configuration.firstBackoff = .milliseconds(50)
        let outbox = UsageOutbox(producer: producer, configuration: configuration, registry: registry, logger: logger)
        let group = ServiceGroup(services: [producer, outbox], logger: logger)
        let running = Task { try await group.run() }
        for number in 0..<5 { outbox.record(Self.event(number)) }
        #expect(try await eventually { Self.metric(registry, "conduit_usage_send_retries_total 2") })
        #expect(outbox.queued > 0)
        let began = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(ContinuousClock.now - began < .seconds(30))
        #expect(Self.metric(registry, #"conduit_usage_events_dropped_total{reason="shutdown"} 5"#))
        #expect(Self.metric(registry, "conduit_usage_events_sent_total 0"))
    }
}
