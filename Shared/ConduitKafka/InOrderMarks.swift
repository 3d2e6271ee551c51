import Kafka

/// Which messages' offsets may be marked durable when several are processed at once: per topic
/// and partition, a message is marked only when it and every message before it there have
/// finished, so a crash never skips one still running (Kafka stores one offset per partition:
/// "everything before this is done").
struct InOrderMarks: Sendable {
    private struct Partition: Hashable {
        var topic: String
        var partition: Int32
    }

    private var running: [Partition: [(message: KafkaMessage, done: Bool)]] = [:]

    var isEmpty: Bool { running.values.allSatisfy(\.isEmpty) }

    mutating func started(_ message: KafkaMessage) {
        running[Partition(topic: message.topic, partition: message.partition), default: []].append((message, false))
    }

    /// `message` finished: the messages now ready to mark, in order.
    mutating func finished(_ message: KafkaMessage) -> [KafkaMessage] {
        let key = Partition(topic: message.topic, partition: message.partition)
        guard var queue = running[key], let index = queue.firstIndex(where: { $0.message.offset == message.offset && !$0.done }) else { return [] }
        queue[index].done = true
        var ready: [KafkaMessage] = []
        while let first = queue.first, first.done {
            ready.append(first.message)
            queue.removeFirst()
        }
        running[key] = queue.isEmpty ? nil : queue
        return ready
    }
}
