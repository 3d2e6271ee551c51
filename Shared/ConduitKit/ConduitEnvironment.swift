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
