/// Where and how the Redis client connects.
public struct RedisConfiguration: Sendable {
    /// Default: `127.0.0.1`.
    public var host: String
    /// Default: `56379` (the local stack).
    public var port: Int
    /// Connections kept open; concurrent commands on one connection are pipelined. Default: 4.
    public var connections: Int
    /// Limit for connecting, in seconds. Default: 2.
    public var connectTimeoutSeconds: Double
    /// Limit for one batch of commands to be written and answered, in seconds. Default: 5.
    public var commandTimeoutSeconds: Double
    /// Most commands written in one batch before replies are read. Default: 1024.
    public var maxBatch: Int
    /// Requests waiting per connection at most; beyond it a command fails at once with
    /// `RedisError.overloaded` instead of queueing without end. Default: 10,000.
    public var maxQueued: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 56379,
        connections: Int = 4,
        connectTimeoutSeconds: Double = 2,
        commandTimeoutSeconds: Double = 5,
        maxBatch: Int = 1024,
        maxQueued: Int = 10_000
    ) {
        self.host = host
        self.port = port
        self.connections = max(1, connections)
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.commandTimeoutSeconds = commandTimeoutSeconds
        self.maxBatch = max(1, maxBatch)
        self.maxQueued = max(1, maxQueued)
    }
}
