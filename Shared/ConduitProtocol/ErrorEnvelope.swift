/// Every HTTP error body: `{"error":{"message","type","param","code"}}`.
public struct ErrorEnvelope: Codable, Sendable, Hashable, Error {
    public var error: Body

    public init(message: String, type: ErrorType, param: String? = nil, code: String? = nil) {
        self.error = Body(message: message, type: type.rawValue, param: param, code: code)
    }

    public struct Body: Codable, Sendable, Hashable {
        public var message: String
        public var type: String
        public var param: String?
        public var code: String?

        // OpenAI writes `param` and `code` as null rather than leaving them out.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(param, forKey: .param)
            try container.encode(code, forKey: .code)
        }

        enum CodingKeys: String, CodingKey { case message, type, param, code }
    }
}

/// The error types of DESIGN.md, each with its HTTP status.
public enum ErrorType: String, Codable, Sendable, CaseIterable {
    case invalidRequest = "invalid_request_error"
    case authentication = "authentication_error"
    case permission = "permission_error"
    case rateLimit = "rate_limit_error"
    case budgetExceeded = "budget_exceeded"
    case upstream = "upstream_error"
    case server = "server_error"

    /// The default status for this type (a not-found is an `invalid_request_error` with 404).
    public var status: Int {
        switch self {
        case .invalidRequest: 400
        case .authentication: 401
        case .permission: 403
        case .rateLimit: 429
        case .budgetExceeded: 429
        case .upstream: 502
        case .server: 500
        }
    }
}
