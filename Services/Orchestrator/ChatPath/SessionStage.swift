import ConduitKit
import ConduitProtocol
import HTTPTypes

/// Conversation memory: the session (from `conduit.session_id`, the `X-Conduit-Session-Id`
/// header, or the `user` field under `X-Conduit-Session: user`) puts its history in front of
/// the new messages; after the answer the turn is stored.
struct SessionStage: ChatStage {
    static let sessionHeader = "X-Conduit-Session-Id"
    /// `X-Conduit-Session: user` makes the request's `user` field the session id.
    static let sessionFromUserHeader = "X-Conduit-Session"

    let memory: ConversationMemory

    /// The session id and the field it came from.
    static func session(of turn: ChatTurn) -> (id: String, param: String)? {
        if let id = turn.request.conduit?.sessionID { return (id, "conduit.session_id") }
        if let header = turn.requestHeaders[HTTPField.Name(sessionHeader)!] { return (header, sessionHeader) }
        if turn.requestHeaders[HTTPField.Name(sessionFromUserHeader)!]?.lowercased() == "user", let user = turn.request.user {
            return (user, "user")
        }
        return nil
    }

    func check(_ turn: ChatTurn) throws {
        if let (id, param) = Self.session(of: turn) { try Sessions.validate(id, param: param) }
    }

    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
        turn.historyBudget = memory.historyBudget(window: turn.window, completion: turn.completionReserve)
        guard let (session, _) = Self.session(of: turn) else { return nil }
        turn.session = session
        turn.responseHeaders[HTTPField.Name(Self.sessionHeader)!] = session
        let recalled = try await memory.recall(turn.body.messages, tenant: turn.tenant, session: session, counter: turn.counter, budget: turn.historyBudget)
        turn.recalled = recalled
        turn.body.messages = recalled.messages
        return nil
    }

    func finish(_ turn: ChatTurn, answer: ChatAnswer) async {
        guard let session = turn.session, let recalled = turn.recalled, var message = answer.completion.choices.first?.message else { return }
        message.refusal = nil
        await memory.remember(recalled, answer: message, tenant: turn.tenant, session: session, counter: turn.counter,
                              budget: turn.historyBudget, requestModel: turn.body.model, billing: turn.billing)
    }
}
