/// A provider call that failed. Descriptions carry the deployment id and the provider's own
/// message, never API keys or prompt text.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case rateLimited, serverError, timeout, connectFailed, badRequest, authentication, notFound,
                 contentFiltered, malformedResponse, streamInterrupted, cancelled
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// 429.
        public static let rateLimited = Code(.rateLimited)
        /// 5xx (and Anthropic's 529 "overloaded").
        public static let serverError = Code(.serverError)
        /// Connect, first-byte or total timeout.
        public static let timeout = Code(.timeout)
        public static let connectFailed = Code(.connectFailed)
        /// The provider refused the request itself (400, 413, 422): the caller's fault, not the deployment's.
        public static let badRequest = Code(.badRequest)
        /// 401/403 from the provider: the deployment's key is wrong.
        public static let authentication = Code(.authentication)
        /// 404 from the provider: the deployment names a model the provider does not have.
        public static let notFound = Code(.notFound)
        /// The provider blocked the prompt (e.g. Gemini's safety `blockReason`).
        public static let contentFiltered = Code(.contentFiltered)
        /// A body that does not follow the provider's documented format.
        public static let malformedResponse = Code(.malformedResponse)
        /// The stream ended or failed before its end marker.
        public static let streamInterrupted = Code(.streamInterrupted)
        /// The caller went away.
        public static let cancelled = Code(.cancelled)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// The provider's HTTP status, when it answered.
    public var status: Int?
    /// What the provider said, for the caller (provider error messages carry no secrets).
    public var message: String
    /// The provider's `Retry-After`, when it sent one.
    public var retryAfter: Duration?
    public var deployment: String?

    public init(_ code: Code, status: Int? = nil, message: String, retryAfter: Duration? = nil, deployment: String? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
        self.deployment = deployment
    }

    /// Worth another attempt at the same deployment.
    public var isRetryable: Bool {
        [.rateLimited, .serverError, .timeout, .connectFailed, .streamInterrupted].contains(code)
    }

    /// Says something about the deployment rather than the request, so another deployment may
    /// succeed and the circuit breaker counts it.
    public var isDeploymentFailure: Bool {
        isRetryable || [.authentication, .notFound, .malformedResponse].contains(code)
    }

    public var description: String {
        "ProviderError(\(code)\(status.map { ", status \($0)" } ?? "")\(deployment.map { ", deployment \($0)" } ?? ""): \(message)"
    }

    /// Classifies an HTTP error status; `message` is what the provider's error body said.
    static func fromStatus(_ status: Int, message: String, retryAfter: Duration?) -> ProviderError {
        let code: Code = switch status {
        case 429: .rateLimited
        case 401, 403: .authentication
        case 404: .notFound
        case 408: .timeout
        case 400..<500: .badRequest
        default: .serverError
        }
        return ProviderError(code, status: status, message: message, retryAfter: retryAfter)
    }
}
