import Foundation

/// The process environment, read once; every `CONDUIT_*` setting goes through here.
public struct ConduitEnvironment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    public func string(_ key: String, default fallback: String) -> String {
        values[key].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
    }

    public func optionalString(_ key: String) -> String? {
        values[key].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// An integer setting; a value that is not an integer stops the start with a clear message.
    public func int(_ key: String, default fallback: Int) throws -> Int {
        guard let text = optionalString(key) else { return fallback }
        guard let value = Int(text) else { throw ConfigurationError(key: key, expected: "an integer") }
        return value
    }

    /// A number within `range`; anything else stops the start with a clear message.
    public func double(_ key: String, default fallback: Double, in range: ClosedRange<Double> = -.greatestFiniteMagnitude ... .greatestFiniteMagnitude) throws -> Double {
        guard let text = optionalString(key) else { return fallback }
        guard let value = Double(text), range.contains(value) else {
            throw ConfigurationError(key: key, expected: "a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// `name=number` pairs separated by commas, each number within `range`.
    public func numbers(_ key: String, in range: ClosedRange<Double>) throws -> [String: Double] {
        guard let text = optionalString(key) else { return [:] }
        var result: [String: Double] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let value = Double(parts[1]), range.contains(value) else {
                throw ConfigurationError(key: key, expected: "name=number pairs separated by commas, numbers from \(range.lowerBound) to \(range.upperBound)")
            }
            result[parts[0]] = value
        }
        return result
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let text = optionalString(key)?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(key: key, expected: "true or false")
        }
    }
}

/// A setting with a value the service cannot use. Names the variable, never its value.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var key: String
    public var expected: String

    public init(key: String, expected: String) {
        self.key = key
        self.expected = expected
    }

    public var description: String { "\(key) must be \(expected)" }
}
