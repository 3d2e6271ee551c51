import ConduitKit
import ConduitProtocol

/// One step of the chat path around the model call. `ChatPipeline` runs every stage's `check`,
/// then each `prepare` in order; a stage that answers (a cache hit) ends the preparing, and the
/// model is not called. After the answer, the stages that prepared `finish` in the same order;
/// when there is none to finish on (a failure, a hang-up), they `abandon` it.
/// A new feature on the chat path (a budget, a template, a guard) is a new stage.
protocol ChatStage: Sendable {
    /// The stage's name in metrics (`session`, `cache`, `retrieval`, `budget`).
    var name: String { get }
    /// Refuses a request the stage cannot serve, before any stage does work. By default, none.
    func check(_ turn: ChatTurn) throws
    /// Changes the turn, or answers it.
    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer?
    /// After an answer, before the response goes out (a millisecond or two beside the model
    /// call), so that the client's next request sees what it did. Failures are the stage's to
    /// log: the answer stands.
    func finish(_ turn: ChatTurn, answer: ChatAnswer) async
    /// The request ended without an answer to finish on, after this stage prepared: a later
    /// stage or the model failed, the client hung up, the stream ended in tool calls. `costUSD`
    /// is what it cost all the same (the tokens streamed before a hang-up), 0 when nothing.
    func abandon(_ turn: ChatTurn, costUSD: Double) async
}

extension ChatStage {
    var name: String {
        let type = String(describing: Self.self)
        return (type.hasSuffix("Stage") ? String(type.dropLast(5)) : type).lowercased()
    }
    func check(_ turn: ChatTurn) throws {}
    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? { nil }
    func finish(_ turn: ChatTurn, answer: ChatAnswer) async {}
    func abandon(_ turn: ChatTurn, costUSD: Double) async {}
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
    /// What the answer cost (0 from the cache).
    var costUSD: Double = 0
}
