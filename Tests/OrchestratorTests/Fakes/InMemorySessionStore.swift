import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
@testable import Orchestrator
import Prometheus
import Providers
import SemanticCache
import TestSupport

/// Sessions in a dictionary, with the Redis store's cap and summary rules left out: only what
/// the chat path relies on.
final class InMemorySessionStore: SessionStore {
    private let sessions = Locked<[String: [ChatMessage]]>([:])

    func messages(tenant: String, id: String) -> [ChatMessage] { sessions.withLock { $0["\(tenant)/\(id)"] ?? [] } }

    func load(tenant: String, id: String) async throws -> StoredSession {
        let messages = self.messages(tenant: tenant, id: id)
        return StoredSession(raw: try messages.map { Array(try JSONEncoder().encode($0)) }, messages: messages)
    }

    func append(_ messages: [ChatMessage], tenant: String, id: String) async throws {
        sessions.withLock { $0["\(tenant)/\(id)", default: []] += messages }
    }

    func compact(replacing entries: [[UInt8]], with summary: String, tenant: String, id: String) async throws -> Bool {
        sessions.withLock { sessions in
            guard var messages = sessions["\(tenant)/\(id)"], messages.count >= entries.count else { return false }
            messages.removeFirst(entries.count)
            sessions["\(tenant)/\(id)"] = [ChatMessage(role: "system", content: .text(summary), name: Sessions.summaryName)] + messages
            return true
        }
    }

    func delete(tenant: String, id: String) async throws -> Bool {
        sessions.withLock { $0.removeValue(forKey: "\(tenant)/\(id)") != nil }
    }

    func remainingSeconds(tenant: String, id: String) async throws -> Int? { messages(tenant: tenant, id: id).isEmpty ? nil : 3600 }
}
