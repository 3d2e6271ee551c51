import ConduitKit
import Redis

extension ReadinessCheck {
    public static func redis(_ client: RedisClient) -> ReadinessCheck {
        ReadinessCheck(name: "redis") {
            guard try await client.ping() else { throw RedisError(.unexpectedReply) }
        }
    }
}
