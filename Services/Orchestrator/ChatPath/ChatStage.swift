import ConduitKit
import ConduitProtocol

/// One step of the chat path around the model call. `ChatPipeline` runs every stage's `check`,
/// then each `prepare` in order; a stage that answers (a cache hit) ends the preparing, and the
/// model is not called. After the answer, the stages that prepared `finish` in the same order.
/// A new feature on the chat path (a budget, a template, a guard) is a new stage.
protocol ChatStage: Sendable {
    /// Refuses a request the stage cannot serve, before any stage does work. By default, none.
    func check(_ turn: ChatTurn) throws
    /// Changes the turn, or answers it.
    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer?
    /// After an answer, before the response goes out (a millisecond or two beside the model
    /// call), so that the client's next request sees what it did. Failures are the stage's to
    /// log: the answer stands.
    func finish(_ turn: ChatTurn, answer: ChatAnswer) async
}

extension ChatStage {
    func check(_ turn: ChatTurn) throws {}
    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? { nil }
    func finish(_ turn: ChatTurn, answer: ChatAnswer) async {}
}

/// An answer a stage gives instead of the model, with the usage event that bills it.
struct StageAnswer: Sendable {
    var completion: ChatCompletion
    var usage: UsageEvent
}

/// The answer the turn got.
struct ChatAnswer: Sendable {
    var completion: ChatCompletion
    /// The model that answered; nil when a stage did.
    var servedModel: String?
}
