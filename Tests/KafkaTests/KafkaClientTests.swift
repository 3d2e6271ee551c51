import ConduitProtocol
import Foundation
import Kafka
import Logging
import Testing
import TestSupport

/// Against the test stack's Kafka-protocol broker (Tansu); every test uses its own topic and group.
@Suite(.timeLimit(.minutes(2)))
struct KafkaClientTests {
    static let kafka = KafkaConfiguration(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "conduit-tests")

    static func producer() -> KafkaProducer {
        KafkaProducer(configuration: .init(kafka: kafka, deliveryTimeoutMilliseconds: 20_000), logger: Logger(label: "producer"))
    }

    static func consumer(group: String, topics: [String]) -> KafkaConsumer {
        // The broker rebalances after max.poll.interval; a low value keeps joins quick.
        KafkaConsumer(
            configuration: .init(
                kafka: kafka, groupID: group, topics: topics,
                maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000, commitIntervalMilliseconds: 200
            ),
            logger: Logger(label: "consumer")
        )
    }

    /// Sends `count` messages keyed `k<i>` with value `<i>`, all in flight at once.
    static func produce(_ producer: KafkaProducer, topic: String, count: Int, from start: Int = 0) async throws -> [KafkaDeliveryReport] {
        try await withThrowingTaskGroup(of: KafkaDeliveryReport.self) { group in
            for index in start..<(start + count) {
                group.addTask { try await producer.send(topic: topic, key: "k\(index)", value: Array("\(index)".utf8)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test func deliveryReportsCarryPartitionAndIncreasingOffsets() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.dr")
        let producer = Self.producer()
        var offsets: [Int64] = []
        for index in 0..<5 {
            let report = try await producer.send(topic: topic, key: "same-key", value: Array("m\(index)".utf8))
            #expect(report.topic == topic)
            offsets.append(report.offset)
        }
        #expect(offsets == offsets.sorted())
        #expect(Set(offsets).count == 5)
        await producer.shutdown()
        let error = try await #require(throws: KafkaError.self) { try await producer.send(topic: topic, key: "k", value: [1]) }
        #expect(error.code == .shutdown)
    }

    @Test func batchSendReturnsEveryReportInOrder() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.batch")
        let producer = Self.producer()
        let messages = (0..<300).map { KafkaOutgoingMessage(topic: topic, key: Array("same".utf8), value: Array("\($0)".utf8)) }
        let reports = try await producer.send(batch: messages)
        #expect(reports.count == 300)
        #expect(reports.allSatisfy { $0.topic == topic })
        // One key, one partition: offsets follow the order given.
        #expect(Set(reports.map(\.partition)).count == 1)
        #expect(reports.map(\.offset) == reports.map(\.offset).sorted())
        #expect(Set(reports.map(\.offset)).count == 300)
        #expect(try await producer.send(batch: []).isEmpty)
        await producer.shutdown()
    }

    @Test func batchToAnUnreachableBrokerFailsAfterSettlingEveryMessage() async throws {
        let producer = KafkaProducer(
            configuration: .init(kafka: .init(bootstrapServers: "127.0.0.1:1"), deliveryTimeoutMilliseconds: 1500),
            logger: Logger(label: "unreachable")
        )
        let messages = (0..<20).map { KafkaOutgoingMessage(topic: "t", key: nil, value: [UInt8($0)]) }
        let error = try await #require(throws: KafkaError.self) { try await producer.send(batch: messages) }
        #expect(error.code == .deliveryFailed)
        await producer.shutdown()
    }

    @Test func producesAndConsumesAThousandWithCommits() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.k1000")
        let group = TestEnvironment.uniqueName("g")
        let producer = Self.producer()
        let reports = try await Self.produce(producer, topic: topic, count: 1000)
        #expect(reports.count == 1000)
        await producer.shutdown()

        let consumer = Self.consumer(group: group, topics: [topic])
        let running = Task { try await consumer.run() }
        var values = Set<String>()
        for try await message in consumer.messages {
            values.insert(String(decoding: message.value, as: UTF8.self))
            #expect(message.keyString == "k" + String(decoding: message.value, as: UTF8.self))
            try consumer.markDurable(message)
            if values.count == 1000 { break }
        }
        try await consumer.commit()
        running.cancel()
        try await running.value
        #expect(values == Set((0..<1000).map(String.init)))

        // Everything was committed: a new member of the group gets nothing old, only what comes next.
        let second = Self.consumer(group: group, topics: [topic])
        let secondRun = Task { try await second.run() }
        let later = Self.producer()
        _ = try await later.send(topic: topic, key: "k1000", value: Array("1000".utf8))
        var iterator = second.messages.makeAsyncIterator()
        let next = try #require(try await iterator.next())
        #expect(String(decoding: next.value, as: UTF8.self) == "1000")
        secondRun.cancel()
        try await secondRun.value
        await later.shutdown()
    }

    /// librdkafka's close waits for the coordinator to answer the last commit and the group's
    /// leaving, with no limit of its own: a broker that stops answering (here, one of the test's
    /// own, stopped with SIGSTOP) held shutdown for its request timeouts (60 s and more). Past
    /// `closeTimeoutMilliseconds` shutdown goes on without it, and the messages end.
    @Test func aBrokerThatStopsAnsweringDoesNotHoldShutdownPastTheCloseTimeout() async throws {
        let directory = TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("frozen-broker"))
        let port = 59_199
        try await StackControl.run("start-kafka", directory, String(port))
        let pid = try #require(Int32((try String(contentsOfFile: directory + "/kafka.pid", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
        }
        let kafka = KafkaConfiguration(bootstrapServers: "127.0.0.1:\(port)", clientID: "conduit-tests")
        let topic = TestEnvironment.uniqueName("conduit.test.frozen")
        let producer = KafkaProducer(configuration: .init(kafka: kafka, deliveryTimeoutMilliseconds: 20_000), logger: Logger(label: "producer"))
        _ = try await producer.send(topic: topic, key: "k", value: Array("one".utf8))
        await producer.shutdown()
        var configuration = KafkaConsumerConfiguration(
            kafka: kafka, groupID: TestEnvironment.uniqueName("g"), topics: [topic],
            maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000, commitIntervalMilliseconds: 200)
        configuration.closeTimeoutMilliseconds = 1500
        let consumer = KafkaConsumer(configuration: configuration, logger: Logger(label: "consumer"))
        let running = Task { try await consumer.run() }
        var iterator = consumer.messages.makeAsyncIterator()
        let message = try #require(try await iterator.next())
        try consumer.markDurable(message)

        // The member holds its partition and has an offset to commit when the broker freezes.
        #expect(kill(pid, SIGSTOP) == 0)
        let stopping = ContinuousClock.now
        running.cancel()
        try await running.value
        let took = ContinuousClock.now - stopping
        #expect(took < .seconds(10), "shutdown took \(took)")
        #expect(took >= .milliseconds(1400), "close returned in \(took): the broker was not holding it")
        #expect(try await iterator.next() == nil)
    }

    @Test func restartedConsumerLosesNothingAndRepeatsOnlyTheUncommitted() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.restart")
        let group = TestEnvironment.uniqueName("g")
        let producer = Self.producer()
        _ = try await Self.produce(producer, topic: topic, count: 1000)
        await producer.shutdown()

        // The first member processes 400 and stops; only what it marked durable counts as done.
        var firstRun = Set<String>()
        let first = Self.consumer(group: group, topics: [topic])
        let firstTask = Task { try await first.run() }
        for try await message in first.messages {
            firstRun.insert(String(decoding: message.value, as: UTF8.self))
            try first.markDurable(message)
            if firstRun.count == 400 { break }
        }
        firstTask.cancel()
        try await firstTask.value

        var secondRun = Set<String>()
        let second = Self.consumer(group: group, topics: [topic])
        let secondTask = Task { try await second.run() }
        for try await message in second.messages {
            secondRun.insert(String(decoding: message.value, as: UTF8.self))
            try second.markDurable(message)
            if firstRun.union(secondRun).count == 1000 { break }
        }
        secondTask.cancel()
        try await secondTask.value

        #expect(firstRun.union(secondRun) == Set((0..<1000).map(String.init)))
        // Close committed every durable offset, so nothing the first member finished comes back.
        #expect(firstRun.intersection(secondRun).isEmpty)
    }

    @Test func malformedMessageGoesToTheDeadLetterQueueAndTheConsumerMovesOn() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.requests")
        let dlqTopic = TestEnvironment.uniqueName("conduit.test.dlq")
        let producer = Self.producer()
        let good = IndexingRequest(op: .upsert, tenant: "t1", collection: "docs", docID: "d1", text: "hello")
        _ = try await producer.send(topic: topic, key: "t1/docs/bad", value: Array("{not json".utf8))
        _ = try await producer.send(topic: topic, key: good.key, value: Array(try JSONEncoder().encode(good)))

        let dlq = DeadLetterQueue(producer: producer, topic: dlqTopic)
        let consumer = Self.consumer(group: TestEnvironment.uniqueName("g"), topics: [topic])
        let running = Task { try await consumer.run() }
        var accepted: [IndexingRequest] = []
        var processed = 0
        for try await message in consumer.messages {
            do {
                accepted.append(try JSONDecoder().decode(IndexingRequest.self, from: Data(message.value)))
            } catch {
                try await dlq.send(message, reason: "value is not a valid indexing request JSON", service: "tests")
            }
            try consumer.markDurable(message)
            processed += 1
            if processed == 2 { break }
        }
        running.cancel()
        try await running.value
        #expect(accepted == [good])

        let reader = Self.consumer(group: TestEnvironment.uniqueName("g"), topics: [dlqTopic])
        let readerTask = Task { try await reader.run() }
        var iterator = reader.messages.makeAsyncIterator()
        let dead = try #require(try await iterator.next())
        readerTask.cancel()
        try await readerTask.value
        let event = try JSONDecoder().decode(DeadLetterEvent.self, from: Data(dead.value))
        #expect(dead.keyString == "t1/docs/bad")
        #expect(event.sourceTopic == topic)
        #expect(event.reason.contains("indexing request"))
        #expect(event.originalValue == Array("{not json".utf8))
        await producer.shutdown()
    }

    /// A reader that falls behind holds at most `bufferBytes` of messages ahead of it, however
    /// few they are (messages can be 8 MiB each; 512 of them were a 4 GiB buffer), and gets all
    /// of them, in order, when it reads.
    @Test func theBufferAheadOfASlowReaderIsBoundedInBytes() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.bytes")
        let producer = Self.producer()
        let producerTask = Task { try await producer.run() }
        defer { producerTask.cancel() }
        let size = 100_000
        _ = try await producer.send(batch: (0..<20).map { index in
            KafkaOutgoingMessage(topic: topic, key: Array("same".utf8), value: [UInt8](repeating: UInt8(index), count: size))
        })
        let consumer = KafkaConsumer(
            configuration: .init(kafka: Self.kafka, groupID: TestEnvironment.uniqueName("bytes"), topics: [topic],
                                 maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000, bufferSize: 512, bufferBytes: 300_000),
            logger: Logger(label: "consumer"))
        let consumerTask = Task { try await consumer.run() }
        defer { consumerTask.cancel() }
        // Nothing is read until the buffer has filled as far as it may.
        #expect(try await eventually(within: .seconds(60)) { consumer.bufferedBytes > 0 })
        try await Task.sleep(for: .seconds(2))
        #expect(consumer.bufferedBytes <= 300_000 + size, "\(consumer.bufferedBytes) bytes buffered")
        var seen: [UInt8] = []
        for try await message in consumer.messages {
            #expect(message.value.count == size)
            seen.append(message.value[0])
            if seen.count == 20 { break }
        }
        #expect(seen == (0..<20).map(UInt8.init))
        #expect(consumer.bufferedBytes <= 300_000 + size)
    }

    @Test func invalidConfigurationNamesTheKeyNotTheValue() async throws {
        let producer = KafkaProducer(
            configuration: .init(kafka: KafkaConfiguration(bootstrapServers: "127.0.0.1:1", properties: ["sasl.password.bogus": "s3cret"])),
            logger: Logger(label: "bad")
        )
        let error = try await #require(throws: KafkaError.self) { try await producer.send(topic: "t", key: "k", value: [1]) }
        #expect(error.code == .invalidConfiguration)
        #expect(error.description.contains("sasl.password.bogus"))
        #expect(!error.description.contains("s3cret"))
    }

    @Test func librdkafkaIsTheVersionTheBrokerNeeds() {
        // Debian's 2.0.2 fails the handshake with Tansu; the stack puts 2.16 first on the library path.
        let parts = librdkafkaVersion.split(separator: ".").compactMap { Int($0) }
        #expect(parts.count >= 2)
        #expect(parts[0] > 2 || (parts[0] == 2 && parts[1] >= 16), "librdkafka \(librdkafkaVersion)")
    }
}
