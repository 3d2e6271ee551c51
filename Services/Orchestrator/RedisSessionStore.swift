import ConduitKit
import ConduitProtocol
import Foundation
import Redis

/// Conversation memory in Redis: `sess:{tenant}:{id}` is a list of messages (JSON), oldest
/// first; a summary of older turns, when there is one, is its first entry (a system message
/// named `conduit_summary`). Every write renews the TTL.
struct RedisSessionStore: SessionStore {
    let redis: RedisClient
    let ttl: Duration
    /// Messages a session keeps at most, the summary included: past it the oldest go, whether
    /// or not a summary managed to replace them. Default 200 (`CONDUIT_SESSION_MAX_MESSAGES`).
    var maxMessages = 200

    /// Appends messages, drops the oldest beyond the cap (keeping a summary at the front) and
    /// renews the TTL, in one step.
    private static let appendScript = RedisScript("""
        redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
        local max = tonumber(ARGV[2])
        local len = redis.call('LLEN', KEYS[1])
        if len > max then
            local first = redis.call('LINDEX', KEYS[1], 0)
            if string.find(first, '"name":"conduit_summary"', 1, true) then
                redis.call('LTRIM', KEYS[1], len - max + 1, -1)
                redis.call('LPUSH', KEYS[1], first)
            else
                redis.call('LTRIM', KEYS[1], len - max, -1)
            end
        end
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        return redis.call('LLEN', KEYS[1])
        """)

    /// Replaces the first N entries by a summary, only if they are still the ones summarised
    /// (another request may have compacted or deleted the session meanwhile).
    private static let compactScript = RedisScript("""
        local n = #ARGV - 2
        for i = 1, n do
            if redis.call('LINDEX', KEYS[1], i - 1) ~= ARGV[i + 2] then return 0 end
        end
        redis.call('LTRIM', KEYS[1], n, -1)
        redis.call('LPUSH', KEYS[1], ARGV[2])
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        return 1
        """)

    static func key(tenant: String, id: String) -> String { "sess:\(tenant):\(id)" }

    func load(tenant: String, id: String) async throws -> StoredSession {
        let reply = try await redis.send(RedisCommand("LRANGE", Self.key(tenant: tenant, id: id), 0, -1))
        var raw: [[UInt8]] = []
        var messages: [ChatMessage] = []
        let decoder = JSONDecoder()
        for case .bulk(let bytes) in reply.array ?? [] {
            // An entry that is not a message (written by hand, or by a future version) is skipped.
            guard let message = try? decoder.decode(ChatMessage.self, from: Data(bytes)) else { continue }
            raw.append(bytes)
            messages.append(message)
        }
        return StoredSession(raw: raw, messages: messages)
    }

    func append(_ messages: [ChatMessage], tenant: String, id: String) async throws {
        guard !messages.isEmpty else { return }
        let encoder = WireCoding.encoder()
        var arguments: [any RedisArgument] = [Self.seconds(ttl), String(max(2, maxMessages))]
        for message in messages { arguments.append(Array(try encoder.encode(message))) }
        _ = try await redis.run(Self.appendScript, keys: [Self.key(tenant: tenant, id: id)], arguments: arguments)
    }

    /// Replaces `entries` (the session's first entries, as loaded) by `summary`. False when the
    /// session changed at its start meanwhile.
    func compact(replacing entries: [[UInt8]], with summary: String, tenant: String, id: String) async throws -> Bool {
        let message = ChatMessage(role: "system", content: .text(summary), name: Sessions.summaryName)
        var arguments: [any RedisArgument] = [Self.seconds(ttl), Array(try WireCoding.encoder().encode(message))]
        arguments.append(contentsOf: entries.map { $0 as any RedisArgument })
        return try await redis.run(Self.compactScript, keys: [Self.key(tenant: tenant, id: id)], arguments: arguments).int == 1
    }

    func delete(tenant: String, id: String) async throws -> Bool {
        try await redis.del(Self.key(tenant: tenant, id: id)) > 0
    }

    func remainingSeconds(tenant: String, id: String) async throws -> Int? {
        try await redis.pttl(Self.key(tenant: tenant, id: id)).map { $0 / 1000 }
    }

    private static func seconds(_ duration: Duration) -> Int { max(1, Int(duration.components.seconds)) }
}
