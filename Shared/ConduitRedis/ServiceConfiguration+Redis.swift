import ConduitKit
import Redis

extension ServiceConfiguration {
    /// | variable | default |
    /// |---|---|
    /// | `CONDUIT_REDIS_HOST` / `_PORT` / `_CONNECTIONS` | `127.0.0.1` / `56379` / 4 |
    /// | `CONDUIT_REDIS_MAX_QUEUED` | 10000 (requests waiting per connection; beyond: the command fails at once) |
    public var redis: RedisConfiguration {
        get throws {
            RedisConfiguration(
                host: environment.string("CONDUIT_REDIS_HOST", default: "127.0.0.1"),
                port: try environment.int("CONDUIT_REDIS_PORT", default: 56379),
                connections: try environment.int("CONDUIT_REDIS_CONNECTIONS", default: 4),
                maxQueued: try environment.int("CONDUIT_REDIS_MAX_QUEUED", default: 10_000)
            )
        }
    }
}
