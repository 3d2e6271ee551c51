import Logging
import NIOConcurrencyHelpers
import Prometheus
import ServiceLifecycle

/// The client's queue as metrics: `conduit_redis_queued_commands` (waiting to be written, all
/// connections), `conduit_redis_refused_commands_total` (refused on a full queue) and
/// `conduit_redis_cancelled_commands_total` (withdrawn unsent when their caller was cancelled).
public struct RedisMetrics: Sendable {
    let queuedGauge: Gauge
    let refusedCounter: Counter
    let cancelledCounter: Counter

    public init(registry: PrometheusCollectorRegistry) {
        queuedGauge = registry.makeGauge(name: "conduit_redis_queued_commands", help: "Redis requests waiting to be written, all connections.")
        refusedCounter = registry.makeCounter(name: "conduit_redis_refused_commands_total", help: "Redis requests refused because a connection's queue was full.")
        cancelledCounter = registry.makeCounter(name: "conduit_redis_cancelled_commands_total", help: "Redis requests withdrawn unsent because their caller was cancelled.")
    }

    func queued() { queuedGauge.increment() }
    func dequeued(_ count: Int) { if count > 0 { queuedGauge.decrement(by: Double(count)) } }
    func refused() { refusedCounter.increment() }
    func cancelled() { cancelledCounter.increment() }
}

/// A Redis client over a few hiredis connections. Concurrent commands share connections and are
/// pipelined; a pipeline from one caller stays on one connection and in order.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    private let connections: [RedisConnection]
    private let next = NIOLockedValueBox(0)

    public init(configuration: RedisConfiguration, registry: PrometheusCollectorRegistry? = nil, logger: Logger) {
        self.configuration = configuration
        let metrics = registry.map(RedisMetrics.init)
        self.connections = (0..<configuration.connections).map { _ in
            RedisConnection(configuration: configuration, metrics: metrics, logger: logger)
        }
    }

    /// Requests waiting to be written, all connections.
    public var queuedCount: Int { connections.reduce(0) { $0 + $1.queuedCount } }

    /// Holds the connections until graceful shutdown, then closes them.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    public func shutdown() async {
        for connection in connections { await connection.close() }
    }

    /// Sends one command and returns its reply; error replies are returned, not thrown.
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        try await pipeline([command])[0]
    }

    /// Sends the commands back to back on one connection and returns their replies in order.
    /// Error replies stay in place as `.error` so the other replies are not lost.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        if commands.isEmpty { return [] }
        let index = next.withLockedValue { value -> Int in
            value = (value + 1) % connections.count
            return value
        }
        return try await connections[index].send(commands)
    }
}
