/// An error from the Kafka client. Its description never carries message keys or values.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case invalidConfiguration, clientCreationFailed, produceFailed, deliveryFailed, consumerFailed, commitFailed, brokerUnreachable, shutdown
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        public static let invalidConfiguration = Code(.invalidConfiguration)
        public static let clientCreationFailed = Code(.clientCreationFailed)
        /// librdkafka refused to queue the message.
        public static let produceFailed = Code(.produceFailed)
        /// The broker did not acknowledge the message in time, or rejected it.
        public static let deliveryFailed = Code(.deliveryFailed)
        public static let consumerFailed = Code(.consumerFailed)
        public static let commitFailed = Code(.commitFailed)
        public static let brokerUnreachable = Code(.brokerUnreachable)
        /// The client is shut down.
        public static let shutdown = Code(.shutdown)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// librdkafka's error name (e.g. `_MSG_TIMED_OUT`), or the configuration key at fault.
    public var reason: String?
    public var file: String
    public var line: Int

    public init(_ code: Code, reason: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String {
        "KafkaError(\(code)\(reason.map { ", \($0)" } ?? "")) at \(file):\(line)"
    }
}
