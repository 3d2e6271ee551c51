import Foundation

/// One bound parameter as libpq receives it.
public struct PostgresBind: Sendable, Equatable {
    enum Storage: Sendable, Equatable {
        case null
        case text(String)
        /// Binary format with an explicit type OID; used for bytea so bytes travel unescaped.
        case binary([UInt8], oid: UInt32)
    }
    let storage: Storage

    public static let null = PostgresBind(storage: .null)
    public static func text(_ value: String) -> PostgresBind { PostgresBind(storage: .text(value)) }
    public static func bytea(_ value: [UInt8]) -> PostgresBind { PostgresBind(storage: .binary(value, oid: 17)) }
}

/// A Swift value that can be bound as a query parameter. Parameters are sent untyped (OID 0) in
/// text format, so the server infers the type from the statement; cast where it is ambiguous.
public protocol PostgresEncodable: Sendable {
    var postgresBind: PostgresBind { get }
}

/// One column of one row as it came off the wire (text result format).
public struct PostgresCell: Sendable {
    public let columnName: String
    /// The column's type OID, as reported by the server.
    public let typeOID: UInt32
    /// The text representation, or nil for SQL NULL.
    public let text: String?
}

/// A Swift type a column can be decoded as.
public protocol PostgresDecodable {
    static func decode(_ cell: PostgresCell) throws -> Self
}

extension PostgresDecodable {
    static func requireText(_ cell: PostgresCell) throws -> String {
        guard let text = cell.text else { throw PostgresError(.decodingFailed, serverMessage: "NULL in column \(cell.columnName)") }
        return text
    }

    static func failure(_ cell: PostgresCell) -> PostgresError {
        PostgresError(.decodingFailed, serverMessage: "column \(cell.columnName) (oid \(cell.typeOID)) is not \(Self.self)")
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresBind: PostgresBind { self?.postgresBind ?? .null }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Self {
        cell.text == nil ? nil : try Wrapped.decode(cell)
    }
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(self) }
    public static func decode(_ cell: PostgresCell) throws -> String { try requireText(cell) }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(self ? "t" : "f") }
    public static func decode(_ cell: PostgresCell) throws -> Bool {
        switch try requireText(cell) {
        case "t", "true": return true
        case "f", "false": return false
        default: throw failure(cell)
        }
    }
}

/// Integers and floats share one text round trip.
public protocol PostgresLosslessText: PostgresEncodable, PostgresDecodable, LosslessStringConvertible {}

extension PostgresLosslessText {
    public var postgresBind: PostgresBind { .text(description) }
    public static func decode(_ cell: PostgresCell) throws -> Self {
        guard let value = Self(try requireText(cell)) else { throw failure(cell) }
        return value
    }
}

extension Int: PostgresLosslessText {}
extension Int16: PostgresLosslessText {}
extension Int32: PostgresLosslessText {}
extension Int64: PostgresLosslessText {}

extension Double: PostgresLosslessText {
    public static func decode(_ cell: PostgresCell) throws -> Double {
        let text = try requireText(cell)
        switch text {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            guard let value = Double(text) else { throw failure(cell) }
            return value
        }
    }
}

extension Float: PostgresLosslessText {
    public static func decode(_ cell: PostgresCell) throws -> Float { Float(try Double.decode(cell)) }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(uuidString.lowercased()) }
    public static func decode(_ cell: PostgresCell) throws -> UUID {
        guard let value = UUID(uuidString: try requireText(cell)) else { throw failure(cell) }
        return value
    }
}

/// bytea: sent in binary format, received as the server's hex text (`\x…`).
extension Data: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .bytea([UInt8](self)) }
    public static func decode(_ cell: PostgresCell) throws -> Data {
        let text = Array(try requireText(cell).utf8)
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else {
            throw failure(cell)
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity((text.count - 2) / 2)
        var index = 2
        while index < text.count {
            guard let high = hexValue(text[index]), let low = hexValue(text[index + 1]) else { throw failure(cell) }
            bytes.append(high << 4 | low)
            index += 2
        }
        return Data(bytes)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// timestamptz. Sessions run with `TimeZone=UTC` and `DateStyle=ISO`, so the server writes
/// `2024-05-06 07:08:09.123456+00`; microseconds survive the round trip.
extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind {
        let seconds = timeIntervalSince1970
        let whole = seconds.rounded(.down)
        let micros = Int(((seconds - whole) * 1_000_000).rounded())
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        let text = String(
            format: "%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micros
        )
        return .text(text)
    }

    public static func decode(_ cell: PostgresCell) throws -> Date {
        let text = try requireText(cell)
        let scanner = Scanner(string: text)
        scanner.charactersToBeSkipped = nil
        func number(_ separator: String?) -> Int? {
            guard let value = scanner.scanInt() else { return nil }
            if let separator, scanner.scanString(separator) == nil { return nil }
            return value
        }
        guard let year = number("-"), let month = number("-"), let day = number(" "),
              let hour = number(":"), let minute = number(":"), let second = number(nil)
        else { throw failure(cell) }
        var fraction = 0.0
        if scanner.scanString(".") != nil {
            let start = scanner.currentIndex
            _ = scanner.scanCharacters(from: .decimalDigits)
            fraction = Double("0." + text[start..<scanner.currentIndex]) ?? 0
        }
        var offsetSeconds = 0
        if let sign = scanner.scanCharacters(from: CharacterSet(charactersIn: "+-")) {
            let hours = scanner.scanInt() ?? 0
            let minutes = scanner.scanString(":") != nil ? (scanner.scanInt() ?? 0) : 0
            offsetSeconds = (hours * 3600 + minutes * 60) * (sign == "-" ? -1 : 1)
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = timegm(&parts)
        return Date(timeIntervalSince1970: Double(epoch - offsetSeconds) + fraction)
    }
}

/// float4[] / float8[] / int arrays in the server's text form `{1,2.5,3}`.
extension Array: PostgresEncodable where Element: PostgresLosslessText {
    public var postgresBind: PostgresBind { .text("{" + map(\.description).joined(separator: ",") + "}") }
}

extension Array: PostgresDecodable where Element: PostgresLosslessText {
    public static func decode(_ cell: PostgresCell) throws -> [Element] {
        let text = try requireText(cell)
        guard text.first == "{", text.last == "}" else { throw failure(cell) }
        let body = text.dropFirst().dropLast()
        if body.isEmpty { return [] }
        return try body.split(separator: ",").map { item in
            try Element.decode(PostgresCell(columnName: cell.columnName, typeOID: 0, text: String(item)))
        }
    }
}

/// A JSON document bound as text; cast in SQL (`$1::jsonb`) where the column type does not say.
public struct PostgresJSON: PostgresEncodable, PostgresDecodable, Sendable, Equatable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init<T: Encodable>(encoding value: T) throws {
        text = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
    public var postgresBind: PostgresBind { .text(text) }
    public static func decode(_ cell: PostgresCell) throws -> PostgresJSON { PostgresJSON(try requireText(cell)) }
}
