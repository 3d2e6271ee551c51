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

/// An error of another module that has a meaning at the edge (a full Redis queue is a 503 with
/// Retry-After, not a fault): the error middleware asks it before falling back to a 500.
public protocol APIErrorConvertible: Error {
    /// The envelope this error is answered with; nil for a plain 500.
    var apiError: APIError? { get }
}
