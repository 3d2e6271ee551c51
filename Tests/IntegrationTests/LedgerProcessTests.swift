import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Testing
import TestSupport

/// The cost-service killed with SIGKILL while usage events flow: after a restart every event is
/// in the ledger exactly once, and the daily rollups count each once.
@Suite(.timeLimit(.minutes(4)))
struct LedgerProcessTests {
    @Test func aLedgerKilledMidStreamRecordsEveryEventExactlyOnce() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.usage")
        let tenant = TestEnvironment.uniqueName("tenant")
        let environment = [
            "CONDUIT_COST_SERVICE_USAGE_TOPIC": topic, "CONDUIT_COST_SERVICE_GROUP": TestEnvironment.uniqueName("cost"),
            "CONDUIT_COST_SERVICE_DLQ_TOPIC": TestEnvironment.uniqueName("conduit.test.usage.dlq"),
        ]
        let logger = Logger(label: "ledger-process")
        let producer = KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "ledger-test")), logger: logger)
        let postgres = RetrieverProcessTests.postgres()
        let services = [Task { try await producer.run() }, Task { try await postgres.run() }]
        defer { for task in services { task.cancel() } }

        let count = 10_000
        let encoder = EventCoding.encoder()
        let events = (0..<count).map { index in
            var event = UsageEvent(requestID: "r\(index)", tenant: tenant, kind: "chat", model: index % 2 == 0 ? "a" : "b",
                                   promptTokens: 10, completionTokens: 1 + index % 7, status: "ok", timestamp: Date())
            event.keyID = "key-\(index % 3)"
            event.costUSD = 0.000_01 * Double(1 + index % 7)
            return event
        }
        // Events keep arriving while the service is killed and restarted.
        let publishing = Task {
            for batch in stride(from: 0, to: count, by: 250) {
                _ = try await producer.send(batch: try events[batch..<min(batch + 250, count)].map {
                    KafkaOutgoingMessage(topic: topic, key: Array($0.requestID.utf8), value: Array(try encoder.encode($0)))
                })
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        func recorded() async throws -> Int {
            try await postgres.query("SELECT count(*)::int FROM cost.usage_ledger WHERE tenant_id = $1", tenant).first?.decode(Int.self, at: 0) ?? 0
        }

        let first = try ServiceProcessTests.RunningService("cost-service", portOffset: 130, extraEnvironment: environment)
        defer { first.process.signal(SIGKILL) }
        #expect(try await eventually(within: .seconds(120)) { try await recorded() >= 1500 })
        first.process.signal(SIGKILL)
        _ = await first.process.wait()
        let atKill = try await recorded()

        let second = try ServiceProcessTests.RunningService("cost-service", portOffset: 130, extraEnvironment: environment)
        defer { second.process.signal(SIGKILL) }
        try await publishing.value
        #expect(try await eventually(within: .seconds(150)) { try await recorded() == count })
        // Nothing more arrives late: what was replayed after the kill was recorded once.
        try await Task.sleep(for: .seconds(2))
        #expect(try await recorded() == count)
        #expect(atKill < count)

        let rollups = try #require(try await postgres.query(
            "SELECT sum(requests)::int, sum(completion_tokens)::int, sum(cost_usd)::text FROM cost.usage_daily WHERE tenant_id = $1", tenant).first)
        #expect(try rollups.decode(Int.self, at: 0) == count)
        #expect(try rollups.decode(Int.self, at: 1) == events.map(\.completionTokens).reduce(0, +))
        let cost = Double(try rollups.decode(String.self, at: 2)) ?? -1
        #expect(abs(cost - events.map { $0.costUSD ?? 0 }.reduce(0, +)) < 1e-6)
        second.process.signal(SIGTERM)
        #expect(await second.process.wait() == 0)
        await first.http.shutdown()
        await second.http.shutdown()
    }
}
