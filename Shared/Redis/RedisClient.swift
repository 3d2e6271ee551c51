import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// A Redis client over a few hiredis connections. Concurrent commands share connections and are
/// pipelined; a pipeline from one caller stays on one connection and in order.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    private let connections: [RedisConnection]
    private let next = NIOLockedValueBox(0)

    public init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.connections = (0..<configuration.connections).map { _ in
            RedisConnection(configuration: configuration, logger: logger)
        }
    }

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
