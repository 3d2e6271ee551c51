/// An error from the Redis client. Its description never carries keys or values.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case connectionFailed, connectionLost, serverError, unexpectedReply, shutdown, overloaded
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Could not connect.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke or timed out with commands in flight; they may or may not have run.
        public static let connectionLost = Code(.connectionLost)
        /// The server answered with an error reply (e.g. `WRONGTYPE`); see `serverMessage`.
        public static let serverError = Code(.serverError)
        /// The reply did not have the type the command promises.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// The client was shut down.
        public static let shutdown = Code(.shutdown)
        /// The connection's queue was full (`RedisConfiguration.maxQueued`); the command was not sent.
        public static let overloaded = Code(.overloaded)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// For server errors, the error's first word (`WRONGTYPE`, `NOSCRIPT`, `ERR` …), safe to log.
    public var serverErrorKind: String?
    /// The full server or hiredis message. May quote data: debug logs only.
    public var serverMessage: String?
    public var file: String
    public var line: Int

    public init(_ code: Code, serverMessage: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.serverMessage = serverMessage
        self.serverErrorKind = code == .serverError ? serverMessage?.split(separator: " ").first.map(String.init) : nil
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = "RedisError(\(code)"
        if let serverErrorKind { text += ", \(serverErrorKind)" }
        return text + ") at \(file):\(line)"
    }
}
