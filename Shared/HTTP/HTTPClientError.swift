/// An error from the HTTP client. Its description never carries URLs' query strings, headers or bodies.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case invalidRequest, connectFailed, timeout, cancelled, transferFailed, bodyTooLarge, shutdown
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        public static let invalidRequest = Code(.invalidRequest)
        /// The host could not be resolved or did not accept the connection.
        public static let connectFailed = Code(.connectFailed)
        /// The connect or total timeout passed.
        public static let timeout = Code(.timeout)
        /// The caller cancelled; the connection was closed.
        public static let cancelled = Code(.cancelled)
        /// Any other transfer failure; `reason` names the curl error.
        public static let transferFailed = Code(.transferFailed)
        /// `collect(upTo:)` saw more bytes than allowed.
        public static let bodyTooLarge = Code(.bodyTooLarge)
        public static let shutdown = Code(.shutdown)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var reason: String?
    public var file: String
    public var line: Int

    public init(_ code: Code, reason: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String {
        "HTTPClientError(\(code)\(reason.map { ", \($0)" } ?? "")) at \(file):\(line)"
    }
}
