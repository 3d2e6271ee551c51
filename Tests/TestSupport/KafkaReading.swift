import Kafka
import Logging

extension TestEnvironment {
    /// Reads the first `count` messages of `topic` (from its beginning) with a consumer group of
    /// its own, so tests never share offsets.
    public static func readMessages(_ topic: String, count: Int) async throws -> [KafkaMessage] {
        let kafka = KafkaConfiguration(bootstrapServers: kafkaBrokers, clientID: "test-reader")
        let reader = KafkaConsumer(
            configuration: .init(kafka: kafka, groupID: uniqueName("reader"), topics: [topic], maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000),
            logger: Logger(label: "test-reader"))
        let task = Task { try await reader.run() }
        var messages: [KafkaMessage] = []
        do {
            for try await message in reader.messages {
                messages.append(message)
                if messages.count == count { break }
            }
        } catch {
            task.cancel()
            _ = await task.result
            throw error
        }
        // The consumer leaves its group before the test goes on.
        task.cancel()
        _ = await task.result
        return messages
    }

    /// Reads `topic` from its beginning until `found` holds for a message (that message), or
    /// nil after `limit`.
    public static func firstMessage(_ topic: String, within limit: Duration = .seconds(60), where found: @escaping @Sendable (KafkaMessage) -> Bool) async throws -> KafkaMessage? {
        let kafka = KafkaConfiguration(bootstrapServers: kafkaBrokers, clientID: "test-reader")
        let reader = KafkaConsumer(
            configuration: .init(kafka: kafka, groupID: uniqueName("reader"), topics: [topic], maxPollIntervalMilliseconds: 7000, sessionTimeoutMilliseconds: 6000),
            logger: Logger(label: "test-reader"))
        let task = Task { try await reader.run() }
        defer { task.cancel() }
        return try await withThrowingTaskGroup(of: KafkaMessage?.self) { group in
            group.addTask {
                for try await message in reader.messages where found(message) { return message }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
