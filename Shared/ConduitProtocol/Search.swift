/// `POST /v1/search` answers (the retriever's, passed on by the gateway): the best chunks first.
public struct SearchResults: Codable, Sendable, Hashable {
    public var object: String
    public var results: [SearchHit]

    public init(results: [SearchHit]) {
        self.object = "list"
        self.results = results
    }
}

/// One retrieved chunk.
public struct SearchHit: Codable, Sendable, Hashable {
    public var chunkID: String
    public var docID: String
    public var text: String
    /// Unicode scalar offsets of the chunk in its document's text, end exclusive.
    public var start: Int
    public var end: Int
    /// The document's metadata (nested objects flattened to dotted keys), its `source`, and the
    /// chunk's `heading`.
    public var metadata: [String: JSONValue]
    /// The fused score the results are ordered by.
    public var score: Double
    /// Raw scores of the signals that found the chunk: `vector` (cosine), `keyword` (BM25).
    public var scores: [String: Double]

    public init(chunkID: String, docID: String, text: String, start: Int, end: Int, metadata: [String: JSONValue], score: Double, scores: [String: Double]) {
        self.chunkID = chunkID
        self.docID = docID
        self.text = text
        self.start = start
        self.end = end
        self.metadata = metadata
        self.score = score
        self.scores = scores
    }

    enum CodingKeys: String, CodingKey {
        case text, start, end, metadata, score, scores
        case chunkID = "chunk_id"
        case docID = "doc_id"
    }
}
