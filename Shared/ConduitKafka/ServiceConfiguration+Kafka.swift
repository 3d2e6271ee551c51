import ConduitKit
import Kafka

extension ServiceConfiguration {
    /// | variable | default |
    /// |---|---|
    /// | `CONDUIT_KAFKA_BROKERS` | `127.0.0.1:59092` |
    /// | `CONDUIT_KAFKA_COMPRESSION` | `lz4` (producers' `compression.type`: `none`, `gzip`, `snappy`, `lz4`, `zstd`) |
    /// | `CONDUIT_KAFKA_MAX_MESSAGE_BYTES` | 8388608 (the largest message a producer sends, before compression) |
    public var kafka: KafkaConfiguration {
        get throws {
            KafkaConfiguration(
                bootstrapServers: environment.string("CONDUIT_KAFKA_BROKERS", default: "127.0.0.1:59092"),
                clientID: "conduit-\(service.rawValue)",
                producerProperties: [
                    "compression.type": environment.string("CONDUIT_KAFKA_COMPRESSION", default: "lz4"),
                    "message.max.bytes": String(try environment.int("CONDUIT_KAFKA_MAX_MESSAGE_BYTES", default: KafkaProducerConfiguration.defaultMaxMessageBytes)),
                ]
            )
        }
    }

    /// `CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS`, default 300000.
    public var kafkaMaxPollIntervalMilliseconds: Int {
        get throws { try environment.int("CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS", default: 300_000) }
    }

    /// Bytes a consumer holds ahead of its reader, and librdkafka's prefetch limit
    /// (`CONDUIT_KAFKA_CONSUMER_BUFFER_BYTES`, default 67108864).
    public var kafkaConsumerBufferBytes: Int {
        get throws { try environment.int("CONDUIT_KAFKA_CONSUMER_BUFFER_BYTES", default: 64 << 20) }
    }
}
