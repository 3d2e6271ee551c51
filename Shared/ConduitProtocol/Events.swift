import Foundation

/// A request to index or delete one document (`conduit.indexing.requests`, key `tenant/collection/doc_id`).
public struct IndexingRequest: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public enum Operation: String, Codable, Sendable {
        case upsert
        case delete
    }

    public var schemaVersion: Int
    public var op: Operation
    public var tenant: String
    public var collection: String
    public var docID: String
    /// Required for upserts.
    public var text: String?
    public var metadata: [String: JSONValue]?
    public var source: String?

    public init(op: Operation, tenant: String, collection: String, docID: String, text: String? = nil, metadata: [String: JSONValue]? = nil, source: String? = nil) {
        self.schemaVersion = Self.currentSchemaVersion
        self.op = op
        self.tenant = tenant
        self.collection = collection
        self.docID = docID
        self.text = text
        self.metadata = metadata
        self.source = source
    }

    public var key: String { "\(tenant)/\(collection)/\(docID)" }

    enum CodingKeys: String, CodingKey {
        case op, tenant, collection, text, metadata, source
        case schemaVersion = "schema_version"
        case docID = "doc_id"
    }
}

/// One document version, chunked and embedded (`conduit.indexing.chunks`, key
/// `tenant/collection/doc_id`), or a tombstone for a delete (`op: "delete"`, no chunks).
///
/// A version too large for one broker message travels as `parts` events (`part` 0 … parts − 1,
/// in order, on the document's partition), each with some of the chunks; the retriever applies
/// the version only once it holds every part, so a search sees the old version or the whole new
/// one, never a mix. Schema 2 carries each vector as base64 of little-endian float32
/// (`vector`, 2,048 characters for 384 dimensions instead of ~4,600 as JSON numbers); schema 1
/// (`embedding`, JSON numbers, always one part) is still read.
public struct IndexedDocumentEvent: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 2
    public static let supportedSchemaVersions = 1...2
    /// The most parts one version may have: 64 × the embedder's event limit (900 KB) is far above
    /// the largest document the gateway accepts.
    public static let maxParts = 64

    public var schemaVersion: Int
    public var op: IndexingRequest.Operation
    public var tenant: String
    public var collection: String
    public var docID: String
    /// Content hash of the document text and metadata: the same document gives the same version.
    public var version: String
    public var model: String?
    public var metadata: [String: JSONValue]?
    public var source: String?
    /// This event's place among the version's parts (0-based) and how many there are.
    public var part: Int
    public var parts: Int
    public var chunks: [Chunk]

    public init(op: IndexingRequest.Operation, tenant: String, collection: String, docID: String, version: String, model: String? = nil,
                chunks: [Chunk] = [], part: Int = 0, parts: Int = 1) {
        self.schemaVersion = Self.currentSchemaVersion
        self.op = op
        self.tenant = tenant
        self.collection = collection
        self.docID = docID
        self.version = version
        self.model = model
        self.chunks = chunks
        self.part = part
        self.parts = parts
    }

    public var key: String { "\(tenant)/\(collection)/\(docID)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try container.decode(Int.self, forKey: .schemaVersion)
        op = try container.decode(IndexingRequest.Operation.self, forKey: .op)
        tenant = try container.decode(String.self, forKey: .tenant)
        collection = try container.decode(String.self, forKey: .collection)
        docID = try container.decode(String.self, forKey: .docID)
        version = try container.decode(String.self, forKey: .version)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        metadata = try container.decodeIfPresent([String: JSONValue].self, forKey: .metadata)
        source = try container.decodeIfPresent(String.self, forKey: .source)
        part = try container.decodeIfPresent(Int.self, forKey: .part) ?? 0
        parts = try container.decodeIfPresent(Int.self, forKey: .parts) ?? 1
        chunks = try container.decode([Chunk].self, forKey: .chunks)
    }

    public struct Chunk: Codable, Sendable, Hashable {
        /// `doc_id#n`, stable for the same document text; `n` counts across all parts.
        public var id: String
        public var index: Int
        public var text: String
        /// Unicode scalar (code point) offsets of the chunk in the source text, end exclusive.
        public var start: Int
        public var end: Int
        /// The nearest heading above the chunk (Markdown or HTML sources), for context.
        public var heading: String?
        public var contentHash: String
        public var embedding: [Float]

        public init(id: String, index: Int, text: String, start: Int, end: Int, heading: String?, contentHash: String, embedding: [Float]) {
            self.id = id
            self.index = index
            self.text = text
            self.start = start
            self.end = end
            self.heading = heading
            self.contentHash = contentHash
            self.embedding = embedding
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            index = try container.decode(Int.self, forKey: .index)
            text = try container.decode(String.self, forKey: .text)
            start = try container.decode(Int.self, forKey: .start)
            end = try container.decode(Int.self, forKey: .end)
            heading = try container.decodeIfPresent(String.self, forKey: .heading)
            contentHash = try container.decode(String.self, forKey: .contentHash)
            if let encoded = try container.decodeIfPresent(String.self, forKey: .vector) {
                guard let floats = Float32Coding.floats(base64: encoded) else {
                    throw DecodingError.dataCorruptedError(forKey: .vector, in: container, debugDescription: "not base64 of little-endian float32 values")
                }
                embedding = floats
            } else {
                embedding = try container.decode([Float].self, forKey: .embedding)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(index, forKey: .index)
            try container.encode(text, forKey: .text)
            try container.encode(start, forKey: .start)
            try container.encode(end, forKey: .end)
            try container.encodeIfPresent(heading, forKey: .heading)
            try container.encode(contentHash, forKey: .contentHash)
            try container.encode(Float32Coding.base64(embedding), forKey: .vector)
        }

        enum CodingKeys: String, CodingKey {
            case id, index, text, start, end, heading, embedding, vector
            case contentHash = "content_hash"
        }
    }

    enum CodingKeys: String, CodingKey {
        case op, tenant, collection, version, model, metadata, source, chunks, part, parts
        case schemaVersion = "schema_version"
        case docID = "doc_id"
    }
}

/// Vectors as little-endian IEEE 754 float32 bytes, the one binary form every store and event
/// uses: raw in Postgres rows, base64 in events and cache entries.
public enum Float32Coding {
    public static func bytes(_ vector: [Float]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// Nil unless `bytes` holds a whole number of float32 values.
    public static func floats(_ bytes: some DataProtocol) -> [Float]? {
        guard bytes.count % 4 == 0 else { return nil }
        let raw = Array(bytes)
        return raw.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    public static func base64(_ vector: [Float]) -> String {
        Data(bytes(vector)).base64EncodedString()
    }

    /// Nil unless `text` is base64 of a whole number of float32 values.
    public static func floats(base64 text: String) -> [Float]? {
        Data(base64Encoded: text).flatMap(floats)
    }
}

/// What one request consumed (`conduit.usage`, key: request id).
public struct UsageEvent: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    /// The event's identity, made by the service that emits it (a UUIDv7): the ledger's unique
    /// key. Never the caller's request id, which any caller can choose.
    public var eventID: String
    /// The request this event belongs to (`X-Request-Id`): a correlation field, not unique —
    /// one request can cost several model calls (a query rewrite, a summary, the answer).
    public var requestID: String
    public var tenant: String
    public var keyID: String?
    /// The key's team and tags, and the user (the key's, else the request's `user`): what team,
    /// user and tag budgets and usage reports group by.
    public var team: String?
    public var user: String?
    public var tags: [String]?
    /// `chat`, `embedding`, `rewrite` (a RAG follow-up made standalone) or `summary` (a session
    /// summarised).
    public var kind: String
    /// The public model name the caller asked for.
    public var model: String
    /// The public model that answered (differs from `model` after a fallback to another model),
    /// the catalog deployment that served it, and that deployment's provider family.
    public var servedModel: String?
    public var deployment: String?
    public var provider: String?
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedTokens: Int?
    public var reasoningTokens: Int?
    public var costUSD: Double?
    /// The provider reported no usage (a stream without it, a client that hung up): the tokens
    /// and cost are our estimate.
    public var usageEstimated: Bool?
    public var cacheHit: Bool?
    /// On a semantic-cache hit: what the answer cost when the model gave it (the hit costs 0).
    public var savedUSD: Double?
    public var latencyMilliseconds: Int?
    /// Streaming only: from the request's arrival to the first content byte sent.
    public var timeToFirstTokenMilliseconds: Int?
    /// `ok`, or the error type of the failed request (`upstream_error`, `client_closed`, …).
    public var status: String
    public var timestamp: Date
    /// The prompt template the request was rendered from, and its version: cost and latency
    /// can be compared per version.
    public var promptName: String?
    public var promptVersion: Int?
    /// The experiment that chose the version, and its variant.
    public var experimentID: String?
    public var variant: String?
    /// The serving deployment's tier in the catalog (`tier:`), when it has one.
    public var tier: String?
    /// Why this model served the request: `requested` when the caller named it, else the
    /// router's reason (`complexity`, `budget`, `quality_floor`, …; `ModelSelector`).
    public var selectionReason: String?
    /// RAG: the sources the answer cites (nil when the request retrieved nothing).
    public var citations: Int?
    /// A flow step's model call: the flow, and the run it belongs to.
    public var flow: String?
    public var flowRunID: String?

    public init(requestID: String, tenant: String, kind: String, model: String, promptTokens: Int, completionTokens: Int, status: String, timestamp: Date,
                eventID: String = UUIDv7.make()) {
        self.schemaVersion = Self.currentSchemaVersion
        self.eventID = eventID
        self.requestID = requestID
        self.tenant = tenant
        self.kind = kind
        self.model = model
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.status = status
        self.timestamp = timestamp
    }

    enum CodingKeys: String, CodingKey {
        case tenant, kind, model, provider, status, timestamp, team, user, tags
        case schemaVersion = "schema_version"
        case eventID = "event_id"
        case requestID = "request_id"
        case keyID = "key_id"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case cachedTokens = "cached_tokens"
        case reasoningTokens = "reasoning_tokens"
        case costUSD = "cost_usd"
        case usageEstimated = "usage_estimated"
        case cacheHit = "cache_hit"
        case savedUSD = "saved_usd"
        case latencyMilliseconds = "latency_ms"
        case servedModel = "served_model"
        case deployment
        case timeToFirstTokenMilliseconds = "ttft_ms"
        case promptName = "prompt_name"
        case promptVersion = "prompt_version"
        case experimentID = "experiment_id"
        case variant, tier
        case selectionReason = "selection_reason"
        case citations, flow
        case flowRunID = "flow_run_id"
    }
}

/// One audited action at the gateway (`conduit.audit`, key: request id).
public struct AuditEvent: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var requestID: String
    public var tenant: String?
    public var keyID: String?
    public var action: String
    public var resource: String?
    /// `allowed`, `denied` or `failed`.
    public var outcome: String
    public var status: Int?
    public var timestamp: Date
    /// The caller's address, as the gateway saw it.
    public var sourceAddress: String?

    public init(requestID: String, tenant: String?, keyID: String?, action: String, resource: String?, outcome: String, status: Int?, timestamp: Date,
                sourceAddress: String? = nil) {
        self.schemaVersion = Self.currentSchemaVersion
        self.requestID = requestID
        self.tenant = tenant
        self.keyID = keyID
        self.action = action
        self.resource = resource
        self.outcome = outcome
        self.status = status
        self.timestamp = timestamp
        self.sourceAddress = sourceAddress
    }

    enum CodingKeys: String, CodingKey {
        case tenant, action, resource, outcome, status, timestamp
        case schemaVersion = "schema_version"
        case requestID = "request_id"
        case keyID = "key_id"
        case sourceAddress = "source_address"
    }
}

/// A budget crossing a threshold (`conduit.alerts`, key: budget id).
public struct AlertEvent: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var budgetID: String
    public var tenant: String
    /// e.g. `threshold` or `exhausted`.
    public var kind: String
    /// Fraction of the budget spent, 0…1+.
    public var spentFraction: Double
    public var spentUSD: Double
    public var limitUSD: Double
    /// The budget's period (`day`, `week`, `month`, `total`).
    public var period: String
    /// The crossed threshold, a fraction of the limit, and the period it was crossed in (its
    /// counter's label, e.g. `m2026-12`): one alert per budget, window and threshold.
    public var threshold: Double?
    public var window: String?
    public var timestamp: Date

    public init(budgetID: String, tenant: String, kind: String, spentFraction: Double, spentUSD: Double, limitUSD: Double, period: String, timestamp: Date) {
        self.schemaVersion = Self.currentSchemaVersion
        self.budgetID = budgetID
        self.tenant = tenant
        self.kind = kind
        self.spentFraction = spentFraction
        self.spentUSD = spentUSD
        self.limitUSD = limitUSD
        self.period = period
        self.timestamp = timestamp
    }

    enum CodingKeys: String, CodingKey {
        case tenant, kind, period, timestamp, threshold, window
        case schemaVersion = "schema_version"
        case budgetID = "budget_id"
        case spentFraction = "spent_fraction"
        case spentUSD = "spent_usd"
        case limitUSD = "limit_usd"
    }
}

/// A message a consumer could not process (`conduit.indexing.dlq`, same key as the original).
public struct DeadLetterEvent: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    /// Why it was rejected, for a person to act on.
    public var reason: String
    /// The service that rejected it.
    public var service: String
    public var sourceTopic: String
    public var partition: Int32
    public var offset: Int64
    public var key: String?
    /// The original value: as text when it was valid UTF-8, else base64.
    public var value: String
    public var valueEncoding: String

    public init(reason: String, service: String, sourceTopic: String, partition: Int32, offset: Int64, key: String?, value: [UInt8]) {
        self.schemaVersion = Self.currentSchemaVersion
        self.reason = reason
        self.service = service
        self.sourceTopic = sourceTopic
        self.partition = partition
        self.offset = offset
        self.key = key
        if let text = String(validating: value, as: UTF8.self) {
            self.value = text
            self.valueEncoding = "utf8"
        } else {
            self.value = Data(value).base64EncodedString()
            self.valueEncoding = "base64"
        }
    }

    /// The original bytes.
    public var originalValue: [UInt8]? {
        valueEncoding == "base64" ? Data(base64Encoded: value).map(Array.init) : Array(value.utf8)
    }

    enum CodingKeys: String, CodingKey {
        case reason, service, partition, offset, key, value
        case schemaVersion = "schema_version"
        case sourceTopic = "source_topic"
        case valueEncoding = "value_encoding"
    }
}

/// Encoders and decoders with the conventions every event uses (ISO 8601 dates).
public enum EventCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
