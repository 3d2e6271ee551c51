import ConduitKit
import ConduitProtocol

/// RAG (`conduit.rag`): retrieves from the caller's collection and packs numbered sources into
/// the system prompt, as many as the context window leaves room for; the answer's citations
/// are worked out from them (`ChatTurn.info`).
struct RetrievalStage: ChatStage {
    let augmenter: RetrievalAugmenter

    func check(_ turn: ChatTurn) throws {
        if let options = turn.options?.rag { try RetrievalAugmenter.validate(options) }
    }

    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
        guard let options = turn.options?.rag else { return nil }
        let prepared = try await augmenter.prepare(
            turn.body.messages, options: options, requestModel: turn.body.model, tenant: turn.tenant, counter: turn.counter,
            budget: .init(window: turn.window, completion: turn.completionReserve), context: context, billing: turn.billing)
        turn.rag = prepared
        turn.body.messages = prepared.messages
        return nil
    }
}
