/// An error from the Postgres client. Its description carries the code and SQLSTATE but never SQL
/// text, bound values or the server's message, which may quote either.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case connectionFailed, connectionLost, queryFailed, decodingFailed, poolShutdown, migrationFailed
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The server could not be reached or refused the connection.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke while a statement was running; it may or may not have taken effect.
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected the statement; see `sqlState`.
        public static let queryFailed = Code(.queryFailed)
        /// A column could not be decoded as the requested Swift type.
        public static let decodingFailed = Code(.decodingFailed)
        /// The client was shut down.
        public static let poolShutdown = Code(.poolShutdown)
        /// A migration could not be applied.
        public static let migrationFailed = Code(.migrationFailed)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// The five-character SQLSTATE, when the server sent one (e.g. `23505` unique violation).
    public var sqlState: String?
    /// The server's or libpq's message. It may quote SQL or values: log it at debug level only.
    public var serverMessage: String?
    public var file: String
    public var line: Int

    public init(_ code: Code, sqlState: String? = nil, serverMessage: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.sqlState = sqlState
        self.serverMessage = serverMessage
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = "PostgresError(\(code)"
        if let sqlState { text += ", sqlstate: \(sqlState)" }
        return text + ") at \(file):\(line)"
    }
}
