/// A RESP reply.
public enum RedisValue: Sendable, Equatable {
    case null
    case status(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case array([RedisValue])

    /// Bulk or status text; nil for null.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// A bulk reply's bytes; nil for anything else.
    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulk: string.flatMap { Int($0) }
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .bulk: string.flatMap { Double($0) }
        default: nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// Throws for an error reply, so typed commands surface server errors.
    func orThrow() throws -> RedisValue {
        if case .error(let message) = self { throw RedisError(.serverError, serverMessage: message) }
        return self
    }
}

/// Anything that can be sent as one command argument.
public protocol RedisArgument: Sendable {
    var redisBytes: [UInt8] { get }
}

extension String: RedisArgument { public var redisBytes: [UInt8] { Array(utf8) } }
extension Substring: RedisArgument { public var redisBytes: [UInt8] { Array(utf8) } }
extension Int: RedisArgument { public var redisBytes: [UInt8] { Array(String(self).utf8) } }
extension Double: RedisArgument { public var redisBytes: [UInt8] { Array(String(self).utf8) } }
extension [UInt8]: RedisArgument { public var redisBytes: [UInt8] { self } }

/// One command with its arguments, encoded in RESP once, when it is made, so the connection
/// thread only concatenates bytes.
public struct RedisCommand: Sendable {
    let encoded: [UInt8]

    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments: arguments)
    }

    public init(_ name: String, arguments: [any RedisArgument]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + name.utf8.count + arguments.count * 16)
        bytes.append(UInt8(ascii: "*"))
        Self.appendDecimal(arguments.count + 1, to: &bytes)
        Self.appendBulk(name.utf8, to: &bytes)
        for argument in arguments { Self.appendBulk(argument.redisBytes, to: &bytes) }
        encoded = bytes
    }

    private static func appendBulk(_ argument: some Collection<UInt8>, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(argument.count, to: &bytes)
        bytes.append(contentsOf: argument)
        bytes.append(13)
        bytes.append(10)
    }

    /// `<n>\r\n` in ASCII digits.
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
        } else {
            bytes.append(contentsOf: String(value).utf8)
        }
        bytes.append(13)
        bytes.append(10)
    }
}
