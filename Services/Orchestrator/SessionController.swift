import ConduitKit
import ConduitProtocol
import HTTPTypes
import Hummingbird
import SemanticCache

/// Conversation memory and the semantic cache as resources of the caller's tenant:
/// `GET`/`DELETE /v1/sessions/{id}` and `DELETE /v1/cache` (purges the tenant's entries).
struct SessionController: Sendable {
    let store: any SessionStore
    let cache: any AnswerIndex

    struct SessionBody: Encodable {
        var id: String
        var object = "session"
        var messages: [ChatMessage]
        /// The summary of older turns, when there is one (it is also `messages[0]`).
        var summary: String?
        var expiresInSeconds: Int?

        enum CodingKeys: String, CodingKey {
            case id, object, messages, summary
            case expiresInSeconds = "expires_in_seconds"
        }
    }

    struct Deleted: Encodable {
        var id: String
        var object: String
        var deleted: Bool
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.get("/v1/sessions/:id") { request, context in
            let (tenant, id) = try Self.identify(request, context)
            let stored = try await store.load(tenant: tenant, id: id)
            guard !stored.messages.isEmpty else { throw APIError.notFound("No session '\(id)' exists (or it expired).") }
            let summary = stored.messages.first.flatMap { $0.name == Sessions.summaryName ? $0.content?.plainText : nil }
            return try jsonResponse(SessionBody(
                id: id, messages: stored.messages, summary: summary, expiresInSeconds: try await store.remainingSeconds(tenant: tenant, id: id)))
        }
        router.delete("/v1/sessions/:id") { request, context in
            let (tenant, id) = try Self.identify(request, context)
            guard try await store.delete(tenant: tenant, id: id) else { throw APIError.notFound("No session '\(id)' exists (or it expired).") }
            return try jsonResponse(Deleted(id: id, object: "session.deleted", deleted: true))
        }
        router.delete("/v1/cache") { _, context in
            let tenant = try context.callerTenant()
            let deleted = try await cache.purge(tenant: tenant)
            return try jsonResponse(["object": JSONValue.string("cache.purged"), "tenant": .string(tenant), "deleted": .number(Double(deleted))])
        }
    }

    static func identify(_ request: Request, _ context: ConduitRequestContext) throws -> (tenant: String, id: String) {
        let id = try context.pathParameter("id")
        try Sessions.validate(id, param: "id")
        return (try context.callerTenant(), id)
    }

}
