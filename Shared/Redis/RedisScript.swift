import NIOConcurrencyHelpers

/// A Lua script run atomically on the server (EVALSHA, falling back to loading it).
public final class RedisScript: Sendable {
    public let source: String
    private let cachedSHA = NIOLockedValueBox<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    var sha: String? {
        get { cachedSHA.withLockedValue { $0 } }
        set { cachedSHA.withLockedValue { $0 = newValue } }
    }
}
