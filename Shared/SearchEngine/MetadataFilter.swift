import ConduitProtocol
import Foundation

/// A chunk's metadata values are `JSONValue`s: scalars, and lists of them (a list matches
/// `equals` and `in` when any element does). Objects are flattened to dotted keys before they
/// reach a collection, so a filter never compares one.
extension JSONValue {
    /// The value on a number line: numbers as they are, ISO 8601 dates as Unix seconds.
    var ordinal: Double? {
        switch self {
        case .number(let value): value
        case .string(let text): ISO8601.seconds(text)
        default: nil
        }
    }

    fileprivate var isList: Bool { if case .array = self { true } else { false } }

    /// Scalars and lists of them: what a filter may compare with.
    fileprivate var isFilterable: Bool {
        switch self {
        case .object: false
        case .array(let items): items.allSatisfy(\.isFilterable)
        default: true
        }
    }
}

/// A predicate over chunk metadata, decoded from the JSON a search request carries:
///
///     {"field": "lang", "eq": "en"}
///     {"field": "tags", "in": ["a", "b"]}
///     {"field": "year", "gte": 2020, "lt": 2024}            numbers
///     {"field": "published", "gte": "2024-01-01"}           ISO 8601 dates and times
///     {"field": "author", "exists": true}
///     {"and": [ … ]}   {"or": [ … ]}   {"not": { … }}
public indirect enum MetadataFilter: Sendable, Equatable {
    case equals(String, JSONValue)
    case oneOf(String, [JSONValue])
    case range(String, lower: Bound?, upper: Bound?)
    case exists(String, Bool)
    case and([MetadataFilter])
    case or([MetadataFilter])
    case not(MetadataFilter)

    public struct Bound: Sendable, Equatable {
        public var value: Double
        public var inclusive: Bool
    }

    public func matches(_ metadata: [String: JSONValue]) -> Bool {
        switch self {
        case .equals(let field, let expected):
            guard let value = metadata[field] else { return false }
            return Self.equal(value, expected)
        case .oneOf(let field, let options):
            guard let value = metadata[field] else { return false }
            return options.contains { Self.equal(value, $0) }
        case .range(let field, let lower, let upper):
            guard let value = metadata[field] else { return false }
            let candidates: [JSONValue] = if case .array(let items) = value { items } else { [value] }
            return candidates.contains { candidate in
                guard let number = candidate.ordinal else { return false }
                if let lower, lower.inclusive ? number < lower.value : number <= lower.value { return false }
                if let upper, upper.inclusive ? number > upper.value : number >= upper.value { return false }
                return true
            }
        case .exists(let field, let expected):
            let present = metadata[field].map { $0 != .null } ?? false
            return present == expected
        case .and(let filters):
            return filters.allSatisfy { $0.matches(metadata) }
        case .or(let filters):
            return filters.contains { $0.matches(metadata) }
        case .not(let filter):
            return !filter.matches(metadata)
        }
    }

    /// Numbers compare by value (so 3 equals 3.0); a list equals a scalar if any element does;
    /// dates compare as instants when both sides parse as ISO 8601.
    private static func equal(_ value: JSONValue, _ expected: JSONValue) -> Bool {
        if case .array(let items) = value, !(expected.isList) { return items.contains { equal($0, expected) } }
        if value == expected { return true }
        if case .string(let left) = value, case .string(let right) = expected,
           let first = ISO8601.seconds(left), let second = ISO8601.seconds(right) {
            return first == second
        }
        return false
    }
}

extension MetadataFilter: Decodable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let field = Key(stringValue: "field")
    }

    static let comparisons = ["eq", "in", "gt", "gte", "lt", "lte", "exists"]
    static let valuesRule = "metadata values are strings, numbers, booleans, null or lists of them"

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let keys = Set(container.allKeys.map(\.stringValue))
        func fail(_ message: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
        }
        for combinator in ["and", "or", "not"] where keys.contains(combinator) {
            guard keys.count == 1 else { throw fail("'\(combinator)' must be the only key of its object") }
            let key = Key(stringValue: combinator)
            switch combinator {
            case "and": self = .and(try container.decode([MetadataFilter].self, forKey: key))
            case "or": self = .or(try container.decode([MetadataFilter].self, forKey: key))
            default: self = .not(try container.decode(MetadataFilter.self, forKey: key))
            }
            return
        }
        guard keys.contains("field") else {
            throw fail("a filter is {\"field\": …, <operator>: …} with an operator among \(Self.comparisons.joined(separator: ", ")), or {\"and\"|\"or\": [...]}, or {\"not\": {...}}")
        }
        let field = try container.decode(String.self, forKey: .field)
        let operators = keys.subtracting(["field"])
        if let unknown = operators.subtracting(Self.comparisons).sorted().first {
            throw fail("unknown filter operator '\(unknown)'; use one of \(Self.comparisons.joined(separator: ", "))")
        }
        if operators.contains("eq") {
            guard operators.count == 1 else { throw fail("'eq' cannot be combined with other operators on '\(field)'") }
            let value = try container.decode(JSONValue.self, forKey: Key(stringValue: "eq"))
            guard value.isFilterable else { throw fail(Self.valuesRule) }
            self = .equals(field, value)
        } else if operators.contains("in") {
            guard operators.count == 1 else { throw fail("'in' cannot be combined with other operators on '\(field)'") }
            let values = try container.decode([JSONValue].self, forKey: Key(stringValue: "in"))
            guard values.allSatisfy(\.isFilterable) else { throw fail(Self.valuesRule) }
            self = .oneOf(field, values)
        } else if operators.contains("exists") {
            guard operators.count == 1 else { throw fail("'exists' cannot be combined with other operators on '\(field)'") }
            self = .exists(field, try container.decode(Bool.self, forKey: Key(stringValue: "exists")))
        } else if !operators.isEmpty {
            func bound(_ name: String, inclusive: Bool) throws -> Bound? {
                let key = Key(stringValue: name)
                guard container.contains(key) else { return nil }
                let value = try container.decode(JSONValue.self, forKey: key)
                guard let ordinal = value.ordinal else {
                    throw fail("'\(name)' on '\(field)' needs a number or an ISO 8601 date")
                }
                return Bound(value: ordinal, inclusive: inclusive)
            }
            if operators.isSuperset(of: ["gt", "gte"]) || operators.isSuperset(of: ["lt", "lte"]) {
                throw fail("use one lower and one upper bound on '\(field)'")
            }
            let lower = try bound("gt", inclusive: false) ?? bound("gte", inclusive: true)
            let upper = try bound("lt", inclusive: false) ?? bound("lte", inclusive: true)
            self = .range(field, lower: lower, upper: upper)
        } else {
            throw fail("filter on '\(field)' has no operator; use one of \(Self.comparisons.joined(separator: ", "))")
        }
    }
}

/// A small, allocation-free ISO 8601 reader: `YYYY-MM-DD`, optionally `THH:MM[:SS[.fff]]`
/// and `Z` or `±HH:MM` (no zone means UTC). Returns Unix seconds, nil for anything else.
enum ISO8601 {
    static func seconds(_ text: String) -> Double? {
        var utf8 = text.utf8.makeIterator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        while let byte = utf8.next() {
            bytes.append(byte)
            if bytes.count > 40 { return nil }
        }
        guard bytes.count >= 10 else { return nil }
        var position = 0
        func number(_ digits: Int) -> Int? {
            guard position + digits <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<digits {
                let byte = bytes[position]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
                position += 1
            }
            return value
        }
        func expect(_ character: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == character else { return false }
            position += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
        guard position < bytes.count else { return seconds }
        guard expect(84) || expect(116) || expect(32), let hour = number(2), expect(58), let minute = number(2),
              hour < 24, minute < 60 else { return nil }
        seconds += Double(hour * 3600 + minute * 60)
        if expect(58) {
            guard let second = number(2), second < 61 else { return nil }
            seconds += Double(second)
            if expect(46) || expect(44) {
                var scale = 0.1
                var any = false
                while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 {
                    seconds += Double(bytes[position] - 48) * scale
                    scale /= 10
                    position += 1
                    any = true
                }
                guard any else { return nil }
            }
        }
        if position == bytes.count || expect(90) || expect(122) { return position == bytes.count ? seconds : nil }
        let sign: Double
        if expect(43) { sign = 1 } else if expect(45) { sign = -1 } else { return nil }
        guard let zoneHours = number(2) else { return nil }
        _ = expect(58)
        guard let zoneMinutes = number(2), position == bytes.count else { return nil }
        return seconds - sign * Double(zoneHours * 3600 + zoneMinutes * 60)
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let shifted = month <= 2 ? year - 1 : year
        let era = (shifted >= 0 ? shifted : shifted - 399) / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension MetadataFilter {
    /// Conditions and listed values in the filter: what evaluating it costs per candidate.
    public var size: Int {
        switch self {
        case .equals, .range, .exists: 1
        case .oneOf(_, let values): max(1, values.count)
        case .and(let filters), .or(let filters): 1 + filters.reduce(0) { $0 + $1.size }
        case .not(let filter): 1 + filter.size
        }
    }
}
