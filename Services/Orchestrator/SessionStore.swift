import ConduitProtocol

/// Where conversation memory lives (`RedisSessionStore`; an application test keeps it in
/// memory): a session is its tenant's ordered list of messages, a summary of older turns first
/// when there is one, renewed by every write and gone after its time to live.
protocol SessionStore: Sendable {
    func load(tenant: String, id: String) async throws -> StoredSession
    /// Appends messages, keeping the store's cap (a summary stays in front), and renews the lifetime.
    func append(_ messages: [ChatMessage], tenant: String, id: String) async throws
    /// Replaces `entries` (the session's first entries, as loaded) by `summary`. False when the
    /// session changed at its start meanwhile.
    func compact(replacing entries: [[UInt8]], with summary: String, tenant: String, id: String) async throws -> Bool
    func delete(tenant: String, id: String) async throws -> Bool
    func remainingSeconds(tenant: String, id: String) async throws -> Int?
}

/// A session as loaded.
struct StoredSession: Sendable {
    /// The entries as stored (needed to compact them safely).
    var raw: [[UInt8]]
    var messages: [ChatMessage]
}
