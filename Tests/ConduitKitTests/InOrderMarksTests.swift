@testable import ConduitKafka
import Kafka
import Testing

/// Offsets marked only behind every earlier message of their partition.
struct InOrderMarksTests {
    static func message(_ offset: Int64, partition: Int32 = 0, topic: String = "t") -> KafkaMessage {
        KafkaMessage(topic: topic, partition: partition, offset: offset, key: nil, value: [])
    }

    @Test func aMessageIsMarkedOnlyOnceEveryEarlierOneOfItsPartitionFinished() {
        var marks = InOrderMarks()
        for offset: Int64 in 10...13 { marks.started(Self.message(offset)) }
        marks.started(Self.message(5, partition: 1))
        #expect(marks.finished(Self.message(12)) == [])
        #expect(marks.finished(Self.message(11)) == [])
        // Another partition is not held back by this one.
        #expect(marks.finished(Self.message(5, partition: 1)) == [Self.message(5, partition: 1)])
        #expect(marks.finished(Self.message(10)).map(\.offset) == [10, 11, 12])
        #expect(!marks.isEmpty)
        #expect(marks.finished(Self.message(13)).map(\.offset) == [13])
        #expect(marks.isEmpty)
    }

    @Test func topicsArePartitionsOfTheirOwnAndUnknownMessagesMarkNothing() {
        var marks = InOrderMarks()
        marks.started(Self.message(1, topic: "a"))
        marks.started(Self.message(1, topic: "b"))
        #expect(marks.finished(Self.message(1, topic: "b")).map(\.topic) == ["b"])
        #expect(marks.finished(Self.message(7, topic: "a")) == [])
        #expect(marks.finished(Self.message(1, topic: "b")) == [])
        #expect(marks.finished(Self.message(1, topic: "a")).map(\.topic) == ["a"])
        #expect(marks.isEmpty)
    }
}
