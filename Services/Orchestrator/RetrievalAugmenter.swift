import ConduitKit
import ConduitProtocol
import Logging

/// RAG for one chat request: rewrite a follow-up into a standalone query, retrieve, keep the
/// relevant and distinct chunks, and pack as many as the context window leaves room for into
/// the system prompt as numbered sources.
struct RetrievalAugmenter: Sendable {
    /// Tokens kept free beyond the counted prompt and completion, for template differences.
    static let safetyMargin = 64

    let services: any InternalServices
    let rewriter: QueryRewriter

    struct Prepared: Sendable {
        var messages: [ChatMessage]
        var citations: CitationBuilder
        var summary: RetrievalSummary

        func info(answer: String) -> ConduitResponseInfo {
            let result = citations.build(answer: answer)
            return ConduitResponseInfo(citations: result.citations, confidence: result.confidence, retrieval: summary)
        }
    }

    struct Budget: Sendable {
        /// The served model's context window.
        var window: Int
        /// Tokens reserved for the completion.
        var completion: Int
    }

    static func validate(_ options: RAGOptions) throws {
        if options.collection.isEmpty { throw APIError.invalidRequest("'conduit.rag.collection' must not be empty.", param: "conduit.rag.collection") }
        if let topK = options.topK, !(1...50).contains(topK) {
            throw APIError.invalidRequest("'conduit.rag.top_k' must be between 1 and 50.", param: "conduit.rag.top_k")
        }
        if let minScore = options.minScore, !minScore.isFinite {
            throw APIError.invalidRequest("'conduit.rag.min_score' must be a finite number.", param: "conduit.rag.min_score")
        }
    }

    func prepare(
        _ messages: [ChatMessage], options: RAGOptions, requestModel: String, tenant: String,
        counter: TokenCounter, budget: Budget, context: ConduitRequestContext, billing: UsageEvent
    ) async throws -> Prepared {
        guard let lastUser = messages.lastIndex(where: { $0.role == "user" }) else {
            throw APIError.invalidRequest("Retrieval needs a user message to search for.", param: "messages")
        }
        let question = messages[lastUser].content?.plainText ?? ""
        let history = Array(messages[..<lastUser])
        var query = question
        var rewritten = false
        if options.rewrite != false, QueryRewriter.needsRewrite(question, history: history) {
            (query, rewritten) = await rewriter.rewrite(question, history: history, requestModel: requestModel, billing: billing)
        }
        let retrieved = try await services.search(options, query: query, tenant: tenant, context: context)
        let relevant = ContextPacker.relevant(retrieved, options: options)
        let distinct = ContextPacker.droppingNearDuplicates(relevant)

        let promptTokens = await counter.count(messages: messages)
        let instructionTokens = await counter.count(ContextPacker.instructions)
        let room = budget.window - budget.completion - promptTokens - instructionTokens - Self.safetyMargin
        let costs = await counter.count(distinct.enumerated().map { ContextPacker.sourceText(number: $0.offset + 1, chunk: $0.element) })
        let packed = ContextPacker.pack(distinct, costs: costs.map { $0 + 2 }, budget: room)
        var summary = RetrievalSummary(query: query, rewritten: rewritten, retrieved: retrieved.count, relevant: distinct.count, used: packed.count)

        guard !packed.isEmpty else {
            summary.note = distinct.isEmpty
                ? "No relevant documents were found in '\(options.collection)'; the answer is not grounded in documents."
                : "Relevant documents were found but none fit in the model's context window."
            return Prepared(
                messages: ContextPacker.messages(messages, adding: ContextPacker.nothingRelevant(collection: options.collection)),
                citations: CitationBuilder(sources: []), summary: summary)
        }
        let sources = packed.enumerated().map { CitationBuilder.Source(number: $0.offset + 1, collection: options.collection, chunk: $0.element) }
        let text = ContextPacker.instructions + "\n\n" + sources.map { ContextPacker.sourceText(number: $0.number, chunk: $0.chunk) }.joined(separator: "\n\n")
        return Prepared(messages: ContextPacker.messages(messages, adding: text), citations: CitationBuilder(sources: sources), summary: summary)
    }
}
