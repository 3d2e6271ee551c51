/// An outbound request.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// Total time limit for this request, body included; overrides the client default.
    public var timeout: Duration?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil, timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A response whose head has arrived; the body streams.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: HTTPBody

    /// The first value of a header, case-insensitively.
    public func header(_ name: String) -> String? {
        Self.header(name, in: headers)
    }

    /// The first value of a header in `headers`, case-insensitively (for headers passed on
    /// from a response, as the gateway does).
    public static func header(_ name: String, in headers: [(name: String, value: String)]) -> String? {
        headers.first { sameName($0.name, name) }?.value
    }

    /// ASCII case-insensitive equality, without allocating lower-cased copies.
    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
