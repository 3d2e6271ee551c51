import ConduitProtocol
import Foundation
@testable import Orchestrator
import Testing

/// The pure parts of RAG: relevance, near-duplicates, packing, citations and confidence.
struct GroundingTests {
    static let document = "Conduit keeps sessions for a day. The semantic cache needs a similarity of 0.95. Budgets are checked before every call."

    /// A chunk of `document` from `start` (Unicode scalars) to its end or `end`.
    static func chunk(_ id: String, start: Int, end: Int? = nil, vector: Double? = 0.8, keyword: Double? = nil, text: String? = nil) -> RetrievedChunk {
        let scalars = Array(document.unicodeScalars)
        let stop = end ?? scalars.count
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<stop])
        var scores: [String: Double] = [:]
        scores["vector"] = vector
        scores["keyword"] = keyword
        return RetrievedChunk(chunkID: id, docID: "guide", text: text ?? String(view), start: start, end: stop,
                              metadata: ["title": "Guide", "source": "guide.md"], score: 0.03, scores: scores)
    }

    @Test func relevanceUsesTheVectorSimilarityOrBM25InKeywordMode() {
        let chunks = [Self.chunk("a", start: 0, vector: 0.7), Self.chunk("b", start: 0, vector: 0.1), Self.chunk("c", start: 0, vector: nil, keyword: 3)]
        #expect(ContextPacker.relevant(chunks, options: RAGOptions(collection: "kb")).map(\.chunkID) == ["a"])
        #expect(ContextPacker.relevant(chunks, options: RAGOptions(collection: "kb", minScore: 0.05)).map(\.chunkID) == ["a", "b"])
        #expect(ContextPacker.relevant(chunks, options: RAGOptions(collection: "kb", mode: .keyword, minScore: 1)).map(\.chunkID) == ["c"])
    }

    @Test func nearDuplicatesKeepTheBestRanked() {
        let original = Self.chunk("a", start: 0, text: "The cache keeps answers for a day and refuses negated questions outright.")
        let copy = Self.chunk("b", start: 0, text: "The cache keeps answers for a day and refuses negated questions outright!")
        let other = Self.chunk("c", start: 0, text: "Budgets are reserved before the provider call and settled after it.")
        #expect(ContextPacker.droppingNearDuplicates([original, copy, other]).map(\.chunkID) == ["a", "c"])
    }

    @Test func packingStopsAtTheBudgetButLetsSmallerChunksIn() {
        let chunks = ["a", "b", "c", "d"].map { Self.chunk($0, start: 0) }
        #expect(ContextPacker.pack(chunks, costs: [40, 70, 20, 50], budget: 100).map(\.chunkID) == ["a", "c"])
        #expect(ContextPacker.pack(chunks, costs: [40, 70, 20, 50], budget: 10).isEmpty)
    }

    @Test func sourcesGoIntoTheLeadingSystemMessage() {
        let withSystem = ContextPacker.messages([.system("Be brief."), .user("Q")], adding: "SOURCES")
        #expect(withSystem.count == 2)
        #expect(withSystem[0].content?.plainText == "Be brief.\n\nSOURCES")
        let without = ContextPacker.messages([.user("Q")], adding: "SOURCES")
        #expect(without.map(\.role) == ["system", "user"])
    }

    @Test func markersAreReadInOrderOnce() {
        #expect(CitationBuilder.markers(in: "A [2] and B [1, 3]. Again [2][4]. Not [x] or [12345] or [ ].") == [2, 1, 3, 4])
    }

    @Test func citationsQuoteTheSupportingSentenceWithItsOffsetsInTheDocument() throws {
        // The chunk starts inside the document: offsets must be the document's, not the chunk's.
        let chunk = Self.chunk("guide#1", start: 34)
        let builder = CitationBuilder(sources: [.init(number: 1, collection: "kb", chunk: chunk)])
        let result = builder.build(answer: "The cache needs a similarity of 0.95 [1].")
        let citation = try #require(result.citations.first)
        #expect(citation.quote == "The semantic cache needs a similarity of 0.95.")
        let scalars = Array(Self.document.unicodeScalars)
        var quoted = String.UnicodeScalarView()
        quoted.append(contentsOf: scalars[citation.start..<citation.end])
        #expect(String(quoted) == citation.quote)
        #expect(citation.cited && citation.documentID == "guide" && citation.chunkID == "guide#1")
        #expect(citation.title == "Guide" && citation.source == "guide.md")
        #expect(citation.scores["vector"] == 0.8 && citation.scores["score"] == 0.03)
        #expect(result.confidence == 0.9)  // half of 0.8 similarity + half of all markers valid
    }

    @Test func numbersWithoutASourceLowerTheConfidenceAndAreNotCitations() {
        let builder = CitationBuilder(sources: [.init(number: 1, collection: "kb", chunk: Self.chunk("c", start: 0))])
        let result = builder.build(answer: "Sessions last a day [1]. Budgets are free [7].")
        #expect(result.citations.map(\.index) == [1])
        #expect(result.confidence == 0.65)
    }

    @Test func anUncitedAnswerThatRestatesASourceIsMatchedToIt() {
        let builder = CitationBuilder(sources: [
            .init(number: 1, collection: "kb", chunk: Self.chunk("a", start: 0, end: 34)),
            .init(number: 2, collection: "kb", chunk: Self.chunk("b", start: 81)),
        ])
        let result = builder.build(answer: "Budgets are checked before every provider call.")
        #expect(result.citations.map(\.index) == [2])
        #expect(result.citations.first?.cited == false)
        #expect(CitationBuilder(sources: []).build(answer: "anything [1]") == .init(citations: [], confidence: 0))
        #expect(builder.build(answer: "I do not know.").citations.isEmpty)
        // A short answer sentence that is mostly a source's words counts, however long the source sentence.
        let short = CitationBuilder(sources: [.init(number: 1, collection: "kb", chunk: Self.chunk("s", start: 34, end: 81))])
        #expect(short.build(answer: "The semantic cache similarity is 0.95.").citations.map(\.index) == [1])
    }

    @Test func followUpsAreRecognised() {
        let history: [ChatMessage] = [.user("What does the semantic cache do?"), .assistant("It reuses answers.")]
        #expect(QueryRewriter.needsRewrite("And how long does it keep them?", history: history))
        #expect(QueryRewriter.needsRewrite("Why?", history: history))
        #expect(!QueryRewriter.needsRewrite("How are budgets checked before a provider call?", history: history))
        #expect(!QueryRewriter.needsRewrite("Why?", history: []))
    }

    @Test func aReplayedStreamSpellsTheCachedAnswerExactly() {
        let text = String(repeating: "Cached answers come back word for word. ", count: 5)
        var completion = ChatCompletion(id: "c1", created: 1, model: "m", choices: [.init(index: 0, message: .assistant(text), finishReason: "stop")],
                                        usage: Usage(promptTokens: 3, completionTokens: 40))
        completion.conduit = ConduitResponseInfo(cache: CacheInfo(hit: true, similarity: 0.97))
        let chunks = CacheReplay.chunks(of: completion, includeUsage: true)
        #expect(chunks.first?.choices.first?.delta.role == "assistant")
        #expect(chunks.compactMap { $0.choices.first?.delta.content }.joined() == text)
        #expect(chunks.count > 4)
        #expect(chunks.dropLast().last?.choices.first?.finishReason == "stop")
        #expect(chunks.dropLast().last?.conduit?.cache?.hit == true)
        #expect(chunks.last?.usage?.completionTokens == 40 && chunks.last?.choices.isEmpty == true)
        // Without include_usage no chunk has empty choices: `chunk.choices[0]` works on every one.
        let plain = CacheReplay.chunks(of: completion, includeUsage: false)
        #expect(plain.allSatisfy { !$0.choices.isEmpty && $0.usage == nil })
        #expect(plain.last?.choices.first?.finishReason == "stop" && plain.last?.conduit?.cache?.hit == true)
    }

    @Test func theCacheContextCoversEverythingButTheLastQuestionsWording() {
        var body = ChatCompletionRequest(model: "m", messages: [.system("S"), .user("first"), .assistant("reply"), .user("question")])
        let base = AnswerCache.contextHash(body, earlier: body.messages.dropLast(), rag: nil)
        var reworded = body
        reworded.messages[3] = .user("another wording")
        reworded.stream = true
        reworded.user = "someone"
        #expect(AnswerCache.contextHash(reworded, earlier: reworded.messages.dropLast(), rag: nil) == base)
        var changes: [ChatCompletionRequest] = []
        body.temperature = 0.2; changes.append(body); body.temperature = nil
        body.messages[0] = .system("T"); changes.append(body); body.messages[0] = .system("S")
        body.messages[2] = .assistant("other reply"); changes.append(body); body.messages[2] = .assistant("reply")
        body.tools = [Tool(function: .init(name: "f"))]; changes.append(body); body.tools = nil
        body.model = "n"; changes.append(body); body.model = "m"
        for changed in changes {
            #expect(AnswerCache.contextHash(changed, earlier: changed.messages.dropLast(), rag: nil) != base)
        }
        #expect(AnswerCache.contextHash(body, earlier: body.messages.dropLast(), rag: RAGOptions(collection: "kb")) != base)
    }

    @Test func onlyPlainFinishedAnswersAreCached() {
        func completion(_ message: ChatMessage, finish: String) -> ChatCompletion {
            ChatCompletion(id: "c", created: 1, model: "m", choices: [.init(index: 0, message: message, finishReason: finish)], usage: nil)
        }
        #expect(AnswerCache.storable(completion(.assistant("Paris."), finish: "stop")))
        #expect(!AnswerCache.storable(completion(.assistant("Paris."), finish: "content_filter")))
        #expect(!AnswerCache.storable(completion(.assistant(""), finish: "stop")))
        let call = ChatMessage(role: "assistant", content: nil, toolCalls: [ToolCall(id: "t1", function: .init(name: "f", arguments: "{}"))])
        #expect(!AnswerCache.storable(completion(call, finish: "tool_calls")))
    }

    @Test func requestsThatMustNotUseTheCacheSayWhy() throws {
        let options = AnswerCache.Configuration()
        func reason(_ edit: (inout ChatCompletionRequest) -> Void, conduit: ConduitOptions? = nil) -> String? {
            var body = ChatCompletionRequest(model: "m", messages: [.user("q")])
            edit(&body)
            return AnswerCache.bypassReason(body, options: conduit, configuration: options)
        }
        #expect(reason { _ in } == nil)
        #expect(reason { $0.temperature = 0.2 } == nil)
        #expect(reason { $0.temperature = 1.3 } == "temperature")
        #expect(reason { $0.n = 3 } == "n")
        #expect(reason({ _ in }, conduit: ConduitOptions(cache: false)) == "request")
        #expect(reason { $0.messages.append(.assistant("a")) } == "last message")
    }

    @Test func similarityRangesForTheHitCounter() {
        #expect(AnswerCache.Metrics.range(0.9731) == "0.97-0.98")
        #expect(AnswerCache.Metrics.range(1.0) == "0.99-1.00")
        #expect(AnswerCache.Metrics.range(0.91) == "0.90-0.95")
    }
}
