import ConduitKafka
import ConduitKit
import ConduitPostgres
import ConduitProtocol
@testable import CostService
import Foundation
import Kafka
import Logging
import Postgres
import Prometheus
import Testing
import TestSupport

/// The usage ledger against the test stack's broker and Postgres, each test on its own topics,
/// groups and tenant.
@Suite(.timeLimit(.minutes(3)))
struct LedgerConsumerTests {
    static let kafka = KafkaConfiguration(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "cost-tests")
    static let logger = Logger(label: "cost-ledger")

    /// A ledger consumer reading `topic` as `group`; `stop` ends it.
    struct Running {
        let registry = PrometheusCollectorRegistry()
        let tasks: [Task<Void, any Error>]

        init(topic: String, dlq: String, group: String, postgres: PostgresClient, producer: KafkaProducer) {
            let consumer = KafkaConsumer(
                configuration: .init(kafka: LedgerConsumerTests.kafka, groupID: group, topics: [topic], maxPollIntervalMilliseconds: 7000,
                                     sessionTimeoutMilliseconds: 6000, commitIntervalMilliseconds: 200),
                logger: LedgerConsumerTests.logger)
            let ledger = LedgerConsumer(
                consumer: consumer, dlq: DeadLetterQueue(producer: producer, topic: dlq), ledger: PostgresUsageLedger(postgres: postgres),
                metrics: .init(registry: registry), logger: LedgerConsumerTests.logger)
            tasks = [Task { try await consumer.run() }, Task { try await ledger.run() }]
        }

        func stop() async {
            for task in tasks.reversed() {
                task.cancel()
                _ = await task.result
            }
        }

        func count(_ outcome: String) -> Int {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            let line = String(decoding: buffer, as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix(#"cost_ledger_events_total{outcome="\#(outcome)"}"#) }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
        }
    }

    static func event(tenant: String, key: String, model: String, prompt: Int, completion: Int, cost: Double, day: Int) -> UsageEvent {
        var event = UsageEvent(requestID: UUID().uuidString, tenant: tenant, kind: "chat", model: model, promptTokens: prompt, completionTokens: completion,
                               status: "ok", timestamp: Date(timeIntervalSince1970: 1_767_225_600 + Double(day) * 86_400 + 3600))
        event.keyID = key
        event.costUSD = cost
        event.cachedTokens = prompt / 4
        event.servedModel = model
        event.deployment = model + "-local"
        event.usageEstimated = prompt % 5 == 0 ? true : nil
        event.savedUSD = prompt % 4 == 0 ? cost : nil
        return event
    }

    @Test func eachEventIsRecordedOnceWithItsDailyRollupAndBadOnesAreDeadLettered() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        let topic = TestEnvironment.uniqueName("conduit.test.usage")
        let dlq = TestEnvironment.uniqueName("conduit.test.usage.dlq")
        let postgres = PostgresClient(configuration: try ServiceConfiguration(service: .costService).postgres, logger: Self.logger)
        let producer = KafkaProducer(configuration: .init(kafka: Self.kafka), logger: Self.logger)
        let services = [Task { try await postgres.run() }, Task { try await producer.run() }]
        defer { for task in services { task.cancel() } }
        try await migrate(CostMigrations.cost, on: postgres, logger: Self.logger)

        let events = (0..<60).map { index in
            Self.event(tenant: tenant, key: "key-\(index % 2)", model: index % 3 == 0 ? "big" : "small",
                       prompt: 100 + index, completion: 10 + index, cost: 0.000_123_4 * Double(index + 1), day: (index / 2) % 2)
        }
        let encoder = EventCoding.encoder()
        // Every event, then the first twenty again (a producer retry, a replay), with bad ones between.
        var messages = try events.map { KafkaOutgoingMessage(topic: topic, key: Array($0.requestID.utf8), value: Array(try encoder.encode($0))) }
        messages.insert(KafkaOutgoingMessage(topic: topic, key: nil, value: Array("not json".utf8)), at: 10)
        var negative = events[0]
        negative.eventID = UUIDv7.make()
        negative.promptTokens = -5
        messages.insert(KafkaOutgoingMessage(topic: topic, key: nil, value: Array(try encoder.encode(negative))), at: 30)
        var future = events[1]
        future.eventID = UUIDv7.make()
        future.schemaVersion = 99
        messages.append(KafkaOutgoingMessage(topic: topic, key: nil, value: Array(try encoder.encode(future))))
        messages += try events.prefix(20).map { KafkaOutgoingMessage(topic: topic, key: Array($0.requestID.utf8), value: Array(try encoder.encode($0))) }
        _ = try await producer.send(batch: messages)

        let running = Running(topic: topic, dlq: dlq, group: TestEnvironment.uniqueName("cost"), postgres: postgres, producer: producer)
        #expect(try await eventually(within: .seconds(90)) { running.count("recorded") + running.count("replayed") == 80 })
        #expect(running.count("recorded") == 60)
        #expect(running.count("replayed") == 20)

        let ledger = try #require(try await postgres.query(
            "SELECT count(*)::int, sum(prompt_tokens)::int, sum(cached_tokens)::int, sum(cost_usd)::text FROM cost.usage_ledger WHERE tenant_id = $1", tenant).first)
        #expect(try ledger.decode(Int.self, at: 0) == 60)
        #expect(try ledger.decode(Int.self, at: 1) == events.map(\.promptTokens).reduce(0, +))
        #expect(try ledger.decode(Int.self, at: 2) == events.map { $0.cachedTokens ?? 0 }.reduce(0, +))
        let cost = try #require(Double(try ledger.decode(String.self, at: 3)))
        #expect(abs(cost - events.map { $0.costUSD ?? 0 }.reduce(0, +)) < 1e-9)

        // The rollups sum to the ledger, per key, model and day.
        let rollups = try await postgres.query(
            "SELECT key_id, model, day::text, requests::int, completion_tokens::int, cost_usd::text FROM cost.usage_daily WHERE tenant_id = $1 ORDER BY 1, 2, 3", tenant)
        #expect(rollups.count == 8)
        #expect(try rollups.map { try $0.decode(Int.self, at: 3) }.reduce(0, +) == 60)
        #expect(try rollups.map { try $0.decode(Int.self, at: 4) }.reduce(0, +) == events.map(\.completionTokens).reduce(0, +))
        let extras = try #require(try await postgres.query(
            "SELECT sum(estimated_requests)::int, sum(saved_usd)::text FROM cost.usage_daily WHERE tenant_id = $1", tenant).first)
        #expect(try extras.decode(Int.self, at: 0) == events.filter { $0.usageEstimated == true }.count)
        #expect(abs((Double(try extras.decode(String.self, at: 1)) ?? -1) - events.compactMap(\.savedUSD).reduce(0, +)) < 1e-9)
        let bigOnDayOne = try #require(rollups.first { try $0.decode(String.self, at: 0) == "key-0" && $0.decode(String.self, at: 1) == "big" && $0.decode(String.self, at: 2) == "2026-01-01" })
        let expected = events.filter { $0.keyID == "key-0" && $0.model == "big" && Int($0.timestamp.timeIntervalSince1970) / 86_400 == 20_454 }
        #expect(try bigOnDayOne.decode(Int.self, at: 3) == expected.count)
        #expect(abs((Double(try bigOnDayOne.decode(String.self, at: 5)) ?? 0) - expected.map { $0.costUSD ?? 0 }.reduce(0, +)) < 1e-9)

        // The usage report reads the same rollups, summed over what it does not group by.
        let report = PostgresUsageReport(postgres: postgres)
        let byModel = try await report.rows(try UsageQuery(tenant: tenant, parameters: ["from": "2026-01-01", "to": "2026-01-02", "group_by": "model"]))
        #expect(byModel.map(\.model) == ["big", "small"])
        #expect(byModel.map(\.requests) == [events.filter { $0.model == "big" }.count, events.filter { $0.model == "small" }.count])
        let reported: Double = byModel.map(\.costUSD).reduce(0, +)
        let spent: Double = events.map { $0.costUSD ?? 0 }.reduce(0, +)
        #expect(abs(reported - spent) < 1e-9)
        let byKeyAndDay = try await report.rows(try UsageQuery(tenant: tenant, parameters: ["from": "2026-01-01", "to": "2026-01-01", "group_by": "key,day"]))
        #expect(byKeyAndDay.map { "\($0.keyID ?? "-")/\($0.day ?? "-")" } == ["key-0/2026-01-01", "key-1/2026-01-01"])
        #expect(byKeyAndDay.map(\.requests).reduce(0, +) == events.filter { Int($0.timestamp.timeIntervalSince1970) / 86_400 == 20_454 }.count)
        #expect(try await report.rows(try UsageQuery(tenant: "someone-else", parameters: ["from": "2026-01-01", "to": "2026-01-02"])).isEmpty)

        let dead = try await TestEnvironment.readMessages(dlq, count: 3)
        let reasons = dead.map { String(decoding: $0.value, as: UTF8.self) }
        #expect(reasons.contains { $0.contains("not valid JSON") })
        #expect(reasons.contains { $0.contains("prompt_tokens") })
        #expect(reasons.contains { $0.contains("unsupported schema_version 99") })
        await running.stop()

        // The whole topic again under a new group: nothing changes.
        let replay = Running(topic: topic, dlq: TestEnvironment.uniqueName("conduit.test.usage.dlq"), group: TestEnvironment.uniqueName("cost"), postgres: postgres, producer: producer)
        #expect(try await eventually(within: .seconds(90)) { replay.count("replayed") == 80 })
        #expect(replay.count("recorded") == 0)
        await replay.stop()
        let after = try #require(try await postgres.query("SELECT count(*)::int FROM cost.usage_ledger WHERE tenant_id = $1", tenant).first)
        #expect(try after.decode(Int.self, at: 0) == 60)
        let requests = try await postgres.query("SELECT sum(requests)::int FROM cost.usage_daily WHERE tenant_id = $1", tenant)
        #expect(try requests.first?.decode(Int.self, at: 0) == 60)
    }
}

/// What the ledger refuses, without a broker.
struct UsageEventValidationTests {
    static func reason(_ json: String) -> String {
        do {
            _ = try LedgerConsumer.decode(Array(json.utf8))
            return "accepted"
        } catch let rejection as MessageRejection {
            return rejection.reason
        } catch {
            return "\(error)"
        }
    }

    static let valid = #"{"schema_version":1,"event_id":"e1","request_id":"r1","tenant":"acme","kind":"chat","model":"m","prompt_tokens":3,"completion_tokens":2,"status":"ok","timestamp":"2026-01-01T00:00:00Z","cost_usd":0.5}"#

    @Test func eventsThatCannotBeRecordedAsTheyAreSayWhy() {
        #expect(Self.reason(Self.valid) == "accepted")
        #expect(Self.reason("{").contains("not valid JSON"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""prompt_tokens":3"#, with: #""prompt_tokens":"3""#)).contains("prompt_tokens"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""event_id":"e1""#, with: #""event_id":"""#)).contains("'event_id' must not be empty"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""cost_usd":0.5"#, with: #""cost_usd":-1"#)).contains("cost_usd"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""completion_tokens":2"#, with: #""completion_tokens":-2"#)).contains("completion_tokens"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""schema_version":1"#, with: #""schema_version":2"#)).contains("schema_version 2"))
        // Values no ledger column holds would fail the insert on every retry: refused up front.
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""status":"ok""#, with: #""status":"ok","latency_ms":3000000000"#)).contains("latency_ms"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""status":"ok""#, with: #""status":"ok","ttft_ms":-1"#)).contains("ttft_ms"))
        #expect(Self.reason(Self.valid.replacingOccurrences(of: #""cost_usd":0.5"#, with: #""cost_usd":0.5,"saved_usd":1e12"#)).contains("saved_usd"))
    }
}
