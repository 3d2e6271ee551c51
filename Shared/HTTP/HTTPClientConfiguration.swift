/// Limits of the libcurl client.
public struct HTTPClientConfiguration: Sendable {
    /// Limit for establishing a connection. Default: 5 s.
    public var connectTimeout: Duration
    /// Limit for a whole request, body included, unless the request sets its own. Default: none,
    /// because provider streams may last minutes; set one per request.
    public var defaultTimeout: Duration?
    /// Open connections at most, over all hosts; further requests queue inside curl. Default: 64.
    public var maxConnections: Int
    /// Open connections at most to one host. Default: 32.
    public var maxConnectionsPerHost: Int
    /// Response chunks buffered ahead of the reader before the transfer pauses. Default: 32.
    public var bufferedChunks: Int

    public init(connectTimeout: Duration = .seconds(5), defaultTimeout: Duration? = nil, maxConnections: Int = 64, maxConnectionsPerHost: Int = 32, bufferedChunks: Int = 32) {
        self.connectTimeout = connectTimeout
        self.defaultTimeout = defaultTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.bufferedChunks = max(2, bufferedChunks)
    }
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
