/// The `conduit` extension object of a chat request (the OpenAI SDK sends it through
/// `extra_body`): retrieval, conversation memory and cache control. Never sent to a provider.
public struct ConduitOptions: Codable, Sendable, Hashable {
    public var rag: RAGOptions?
    /// Keeps the conversation in memory under this id: the client sends only new messages.
    public var sessionID: String?
    /// `false` skips the semantic cache for this request (neither read nor written).
    public var cache: Bool?
    /// Limits on the model a router (`model: "auto"`) chooses.
    public var routing: RoutingOptions?
    /// A template from the prompt registry, rendered into the messages.
    public var prompt: PromptOptions?

    public init(rag: RAGOptions? = nil, sessionID: String? = nil, cache: Bool? = nil, routing: RoutingOptions? = nil, prompt: PromptOptions? = nil) {
        self.rag = rag
        self.sessionID = sessionID
        self.cache = cache
        self.routing = routing
        self.prompt = prompt
    }

    enum CodingKeys: String, CodingKey {
        case rag, cache, routing, prompt
        case sessionID = "session_id"
    }
}

/// `conduit.prompt` of a chat request: which prompt (a label's version, `production` when
/// neither is named, or a version number) and the values of its variables.
public struct PromptOptions: Codable, Sendable, Hashable {
    public var name: String
    public var label: String?
    public var version: Int?
    public var variables: [String: JSONValue]?

    public init(name: String, label: String? = nil, version: Int? = nil, variables: [String: JSONValue]? = nil) {
        self.name = name
        self.label = label
        self.version = version
        self.variables = variables
    }
}

/// `conduit.prompt` of an answer rendered from a template: the version that served it, the
/// label it was asked by, the experiment's variant when one chose it.
public struct PromptInfo: Codable, Sendable, Hashable {
    public var name: String
    public var version: Int
    public var label: String?
    public var variant: String?
    public var experimentID: String?

    public init(name: String, version: Int, label: String? = nil, variant: String? = nil, experimentID: String? = nil) {
        self.name = name
        self.version = version
        self.label = label
        self.variant = variant
        self.experimentID = experimentID
    }

    enum CodingKeys: String, CodingKey {
        case name, version, label, variant
        case experimentID = "experiment_id"
    }
}

/// `conduit.routing` of a request to a router model.
public struct RoutingOptions: Codable, Sendable, Hashable {
    /// Only models whose typical time to the first token is at most this are chosen.
    public var maxLatencyMilliseconds: Int?

    public init(maxLatencyMilliseconds: Int? = nil) {
        self.maxLatencyMilliseconds = maxLatencyMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case maxLatencyMilliseconds = "max_latency_ms"
    }
}

/// Retrieval for one chat request: which collection, how many chunks, which search.
public struct RAGOptions: Codable, Sendable, Hashable {
    public enum Mode: String, Codable, Sendable, Hashable {
        case hybrid, vector, keyword
    }

    public var collection: String
    public var topK: Int?
    public var mode: Mode?
    /// A retriever metadata filter (`{"field":{"eq":…}}`, `and`/`or`/`not`…), passed on as is.
    public var filter: JSONValue?
    /// The least relevance a chunk needs to be used: its vector cosine similarity (hybrid and
    /// vector modes) or its BM25 score (keyword mode).
    public var minScore: Double?
    /// `false` skips rewriting a follow-up question into a standalone one.
    public var rewrite: Bool?

    public init(collection: String, topK: Int? = nil, mode: Mode? = nil, filter: JSONValue? = nil, minScore: Double? = nil, rewrite: Bool? = nil) {
        self.collection = collection
        self.topK = topK
        self.mode = mode
        self.filter = filter
        self.minScore = minScore
        self.rewrite = rewrite
    }

    enum CodingKeys: String, CodingKey {
        case collection, mode, filter, rewrite
        case topK = "top_k"
        case minScore = "min_score"
    }
}

/// The `conduit` object of a chat response (in streaming, on the last chunk before `[DONE]`).
public struct ConduitResponseInfo: Codable, Sendable, Hashable {
    /// One entry per source number the answer may cite, `[1]` first.
    public var citations: [Citation]?
    /// 0…1, from the retrieval scores and whether the answer's citations point at retrieved chunks.
    public var confidence: Double?
    public var retrieval: RetrievalSummary?
    public var sessionID: String?
    public var cache: CacheInfo?
    /// Which model a router chose, and why.
    public var routing: RoutingInfo?
    /// The prompt template the request was rendered from.
    public var prompt: PromptInfo?

    public init(citations: [Citation]? = nil, confidence: Double? = nil, retrieval: RetrievalSummary? = nil, sessionID: String? = nil, cache: CacheInfo? = nil,
                routing: RoutingInfo? = nil, prompt: PromptInfo? = nil) {
        self.prompt = prompt
        self.citations = citations
        self.confidence = confidence
        self.retrieval = retrieval
        self.sessionID = sessionID
        self.cache = cache
        self.routing = routing
    }

    enum CodingKeys: String, CodingKey {
        case citations, confidence, retrieval, cache, routing, prompt
        case sessionID = "session_id"
    }
}

/// A source behind `[index]` in the answer.
public struct Citation: Codable, Sendable, Hashable {
    public var index: Int
    public var collection: String
    public var documentID: String
    public var chunkID: String
    public var title: String?
    public var source: String?
    /// Unicode scalar offsets of `quote` in the document's text, end exclusive.
    public var start: Int
    public var end: Int
    /// The span of the chunk that best supports the answer.
    public var quote: String
    /// Retrieval scores: `score` (fused), and the `vector` / `keyword` signals that found it.
    public var scores: [String: Double]
    /// True when the answer wrote `[index]`; false when the span was matched to the answer's text.
    public var cited: Bool

    public init(index: Int, collection: String, documentID: String, chunkID: String, title: String?, source: String?, start: Int, end: Int, quote: String, scores: [String: Double], cited: Bool) {
        self.index = index
        self.collection = collection
        self.documentID = documentID
        self.chunkID = chunkID
        self.title = title
        self.source = source
        self.start = start
        self.end = end
        self.quote = quote
        self.scores = scores
        self.cited = cited
    }

    enum CodingKeys: String, CodingKey {
        case index, collection, title, source, start, end, quote, scores, cited
        case documentID = "document_id"
        case chunkID = "chunk_id"
    }
}

/// What retrieval did for a request.
public struct RetrievalSummary: Codable, Sendable, Hashable {
    /// The query sent to the retriever (the rewritten one when the question needed the conversation).
    public var query: String
    public var rewritten: Bool
    /// Chunks returned, chunks above `min_score`, chunks packed into the prompt.
    public var retrieved: Int
    public var relevant: Int
    public var used: Int
    /// Set when nothing relevant was found, so the answer is not grounded in documents.
    public var note: String?

    public init(query: String, rewritten: Bool, retrieved: Int, relevant: Int, used: Int, note: String? = nil) {
        self.query = query
        self.rewritten = rewritten
        self.retrieved = retrieved
        self.relevant = relevant
        self.used = used
        self.note = note
    }
}

public struct CacheInfo: Codable, Sendable, Hashable {
    public var hit: Bool
    public var similarity: Double?
    public init(hit: Bool, similarity: Double?) {
        self.hit = hit
        self.similarity = similarity
    }
}
