/// Settings shared by producers and consumers.
public struct KafkaConfiguration: Sendable {
    /// Comma-separated `host:port` list. Default: `127.0.0.1:59092` (the local stack).
    public var bootstrapServers: String
    /// Shown in broker logs and metrics. Default: `conduit`.
    public var clientID: String
    /// Any other librdkafka property, passed through as is (e.g. `security.protocol`).
    public var properties: [String: String]
    /// librdkafka properties for producers only (e.g. `compression.type`), over their defaults.
    public var producerProperties: [String: String]

    public init(bootstrapServers: String = "127.0.0.1:59092", clientID: String = "conduit", properties: [String: String] = [:],
                producerProperties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
        self.producerProperties = producerProperties
    }

    var baseProperties: [String: String] {
        ["bootstrap.servers": bootstrapServers, "client.id": clientID].merging(properties) { _, custom in custom }
    }
}

/// Settings of an idempotent producer.
public struct KafkaProducerConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    /// How long a message may wait for acknowledgement before its `send` fails. Default: 30 s.
    public var deliveryTimeoutMilliseconds: Int
    /// Batching delay. Default: 5 ms.
    public var lingerMilliseconds: Int
    /// How long shutdown waits for queued messages to be delivered. Default: 10 s.
    public var flushTimeoutMilliseconds: Int

    public init(kafka: KafkaConfiguration = .init(), deliveryTimeoutMilliseconds: Int = 30_000, lingerMilliseconds: Int = 5, flushTimeoutMilliseconds: Int = 10_000) {
        self.kafka = kafka
        self.deliveryTimeoutMilliseconds = deliveryTimeoutMilliseconds
        self.lingerMilliseconds = lingerMilliseconds
        self.flushTimeoutMilliseconds = flushTimeoutMilliseconds
    }

    /// The largest message a producer accepts by default, uncompressed: room for an indexing
    /// request at the gateway's document limit. Brokers check the compressed batch.
    public static let defaultMaxMessageBytes = 8 * 1024 * 1024

    var properties: [String: String] {
        let defaults = [
            // Documents and chunk texts compress well; brokers limit the compressed size.
            "compression.type": "lz4",
            "message.max.bytes": String(Self.defaultMaxMessageBytes),
        ]
        return kafka.baseProperties.merging(defaults.merging(kafka.producerProperties) { _, custom in custom }) { base, _ in base }.merging([
            "enable.idempotence": "true",
            "acks": "all",
            "delivery.timeout.ms": String(deliveryTimeoutMilliseconds),
            "linger.ms": String(lingerMilliseconds),
        ]) { base, _ in base }
    }
}

/// Settings of a consumer-group member.
public struct KafkaConsumerConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var groupID: String
    public var topics: [String]
    /// Where a group with no committed offset starts. Default: `earliest`, so nothing published before the first start is skipped.
    public var autoOffsetReset: String
    /// A member that does not ask for messages this long leaves the group. Default: 300 000 ms.
    public var maxPollIntervalMilliseconds: Int
    /// A member silent this long is dropped. Default: 45 000 ms, at most the poll interval.
    public var sessionTimeoutMilliseconds: Int
    /// How often stored (durable) offsets are committed. Default: 1 000 ms.
    public var commitIntervalMilliseconds: Int
    /// Messages buffered ahead of the reader before polling pauses. Default: 512.
    public var bufferSize: Int
    /// Bytes (keys and values) buffered ahead of the reader before polling pauses, whatever the
    /// count: 512 messages of 8 MiB would be 4 GiB. Also librdkafka's own prefetch limit
    /// (`queued.max.messages.kbytes`). Default: 64 MiB.
    public var bufferBytes: Int
    /// How long shutdown waits for the member to commit and leave its group. librdkafka's close
    /// has no limit of its own (a coordinator that never answers holds it for good); past this
    /// the consumer is left to finish in the background and shutdown goes on. Default: 10 000 ms.
    public var closeTimeoutMilliseconds: Int = 10_000

    public init(
        kafka: KafkaConfiguration = .init(),
        groupID: String,
        topics: [String],
        autoOffsetReset: String = "earliest",
        maxPollIntervalMilliseconds: Int = 300_000,
        sessionTimeoutMilliseconds: Int = 45_000,
        commitIntervalMilliseconds: Int = 1_000,
        bufferSize: Int = 512,
        bufferBytes: Int = 64 << 20
    ) {
        self.kafka = kafka
        self.groupID = groupID
        self.topics = topics
        self.autoOffsetReset = autoOffsetReset
        self.maxPollIntervalMilliseconds = maxPollIntervalMilliseconds
        // librdkafka refuses a session timeout above the poll interval.
        self.sessionTimeoutMilliseconds = min(sessionTimeoutMilliseconds, maxPollIntervalMilliseconds)
        self.commitIntervalMilliseconds = commitIntervalMilliseconds
        self.bufferSize = max(2, bufferSize)
        self.bufferBytes = max(1, bufferBytes)
    }

    var properties: [String: String] {
        kafka.baseProperties.merging([
            "group.id": groupID,
            "auto.offset.reset": autoOffsetReset,
            "max.poll.interval.ms": String(maxPollIntervalMilliseconds),
            "session.timeout.ms": String(sessionTimeoutMilliseconds),
            // Offsets are stored only when the caller says the effect is durable, and the stored
            // ones are committed in the background and on close.
            "enable.auto.offset.store": "false",
            "enable.auto.commit": "true",
            "auto.commit.interval.ms": String(commitIntervalMilliseconds),
            "allow.auto.create.topics": "true",
            "queued.max.messages.kbytes": String(max(1, bufferBytes / 1024)),
            // Topics appear on first produce; a subscriber started earlier notices within seconds, not minutes.
            "topic.metadata.refresh.interval.ms": "5000",
        ]) { base, _ in base }
    }
}
