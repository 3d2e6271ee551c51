import ConduitKit
import Kafka
import Prometheus
import ServiceLifecycle

/// Publishes each consumer's lag as `conduit_kafka_consumer_lag_messages{group,topic,partition}`,
/// read every `interval` from librdkafka's local state (`KafkaConsumer.lag()`). The series are
/// the partitions this process owns: a handful, whatever the traffic. A partition that moves
/// to another member loses its series here (its new owner reports it), so a dashboard's sum
/// over members does not count one partition twice.
///
/// `CONDUIT_KAFKA_LAG_INTERVAL_MS` (default 5000) sets the interval.
public struct ConsumerLagReporter: Service {
    let consumers: [KafkaConsumer]
    let registry: PrometheusCollectorRegistry
    let interval: Duration

    public init(consumers: [KafkaConsumer], registry: PrometheusCollectorRegistry, configuration: ServiceConfiguration) throws {
        self.consumers = consumers
        self.registry = registry
        interval = .milliseconds(try configuration.environment.int("CONDUIT_KAFKA_LAG_INTERVAL_MS", default: 5000))
    }

    public func run() async throws {
        var reported: [[(String, String)]] = []
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var now: [[(String, String)]] = []
            for consumer in consumers {
                for lag in await consumer.lag() {
                    let labels = [("group", consumer.configuration.groupID), ("topic", lag.topic), ("partition", String(lag.partition))]
                    registry.makeGauge(descriptor: Self.descriptor, labels: labels).set(Double(lag.messages))
                    now.append(labels)
                }
            }
            for gone in reported where !now.contains(where: { $0.elementsEqual(gone, by: ==) }) {
                registry.unregisterGauge(registry.makeGauge(descriptor: Self.descriptor, labels: gone))
            }
            reported = now
            try? await gracefulShutdownAwareSleep(for: interval)
        }
    }

    static var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "conduit", subsystem: "kafka", metricName: "consumer_lag", unitName: "messages",
            helpText: "Messages between a consumer's position and its partition's end, per group and partition this process owns.")
    }

    private func gracefulShutdownAwareSleep(for duration: Duration) async throws {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}
