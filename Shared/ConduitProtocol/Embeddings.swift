import Foundation

/// `POST /v1/embeddings` body.
public struct EmbeddingsRequest: Codable, Sendable, Hashable {
    public var model: String
    public var input: EmbeddingInput
    /// `float` (default) or `base64` (little-endian float32). The official Python SDK asks for base64.
    public var encodingFormat: EncodingFormat?
    public var dimensions: Int?
    public var user: String?

    public init(model: String, input: EmbeddingInput, encodingFormat: EncodingFormat? = nil) {
        self.model = model
        self.input = input
        self.encodingFormat = encodingFormat
    }

    public enum EncodingFormat: String, Codable, Sendable, Hashable {
        case float
        case base64
    }

    enum CodingKeys: String, CodingKey {
        case model, input, dimensions, user
        case encodingFormat = "encoding_format"
    }
}

/// Embeddings input: one string, many strings, one token array or many token arrays.
public enum EmbeddingInput: Codable, Sendable, Hashable {
    case text(String)
    case texts([String])
    case tokens([Int])
    case tokenArrays([[Int]])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else if let texts = try? container.decode([String].self) {
            self = .texts(texts)
        } else if let tokens = try? container.decode([Int].self) {
            self = .tokens(tokens)
        } else if let arrays = try? container.decode([[Int]].self) {
            self = .tokenArrays(arrays)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "input must be a string, an array of strings, an array of token ids or an array of token-id arrays"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let value): try container.encode(value)
        case .texts(let value): try container.encode(value)
        case .tokens(let value): try container.encode(value)
        case .tokenArrays(let value): try container.encode(value)
        }
    }

    /// How many embeddings the request asks for.
    public var count: Int {
        switch self {
        case .text, .tokens: 1
        case .texts(let values): values.count
        case .tokenArrays(let values): values.count
        }
    }
}

/// `POST /v1/embeddings` response (`object: "list"`).
public struct EmbeddingsResponse: Codable, Sendable, Hashable {
    public var object: String
    public var data: [Embedding]
    public var model: String
    public var usage: EmbeddingsUsage

    public init(data: [Embedding], model: String, usage: EmbeddingsUsage) {
        self.object = "list"
        self.data = data
        self.model = model
        self.usage = usage
    }
}

public struct Embedding: Codable, Sendable, Hashable {
    public var object: String
    public var index: Int
    public var embedding: EmbeddingVector

    public init(index: Int, embedding: EmbeddingVector) {
        self.object = "embedding"
        self.index = index
        self.embedding = embedding
    }
}

/// A vector as floats, or as base64 of its little-endian float32 bytes.
public enum EmbeddingVector: Codable, Sendable, Hashable {
    case float([Float])
    case base64(String)

    public init(_ values: [Float], format: EmbeddingsRequest.EncodingFormat) {
        switch format {
        case .float:
            self = .float(values)
        case .base64:
            var bytes = [UInt8]()
            bytes.reserveCapacity(values.count * 4)
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            self = .base64(Data(bytes).base64EncodedString())
        }
    }

    /// The floats, decoding base64 if needed; nil if the base64 is malformed.
    public var floats: [Float]? {
        switch self {
        case .float(let values):
            return values
        case .base64(let text):
            guard let data = Data(base64Encoded: text), data.count % 4 == 0 else { return nil }
            return stride(from: 0, to: data.count, by: 4).map { offset in
                let bits = data[data.startIndex + offset..<data.startIndex + offset + 4].enumerated()
                    .reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                return Float(bitPattern: bits)
            }
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .base64(text)
        } else {
            self = .float(try container.decode([Float].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .float(let values): try container.encode(values)
        case .base64(let text): try container.encode(text)
        }
    }
}

public struct EmbeddingsUsage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var totalTokens: Int
    public init(promptTokens: Int) {
        self.promptTokens = promptTokens
        self.totalTokens = promptTokens
    }
    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case totalTokens = "total_tokens"
    }
}
