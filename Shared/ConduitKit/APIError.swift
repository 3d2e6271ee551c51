import ConduitProtocol
import HTTPTypes
import Hummingbird

/// An error a route throws to answer with the OpenAI error envelope.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var envelope: ErrorEnvelope
    /// Seconds, sent as `Retry-After` (on 429 and 503).
    public var retryAfterSeconds: Int?

    public init(status: HTTPResponse.Status, type: ErrorType, message: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.envelope = ErrorEnvelope(message: message, type: type, param: param, code: code)
    }

    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, type: .invalidRequest, message: message, param: param, code: code)
    }

    public static func notFound(_ message: String) -> APIError {
        APIError(status: .notFound, type: .invalidRequest, message: message, code: "not_found")
    }

    public static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, type: .authentication, message: message, code: "invalid_api_key")
    }

    public static func serviceUnavailable(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, type: .server, message: message, code: "unavailable")
    }
}
