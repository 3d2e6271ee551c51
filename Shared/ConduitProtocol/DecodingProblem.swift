import Foundation

/// A `DecodingError` told so a person can act on it: which field, and what was wrong with it.
/// The HTTP edge puts it in the error envelope, the Kafka consumers in the dead-letter reason,
/// the catalog loader in its start-up error.
public enum DecodingProblem {
    /// E.g. "Invalid type for 'messages[0].content': expected a string." `subject` names what
    /// was decoded, for the message about a document that is not JSON at all.
    public static func message(_ error: DecodingError, subject: String = "The request body") -> String {
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "\(subject) is not valid JSON." }
            return "Invalid value for '\(path(context.codingPath))': \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "Missing required parameter: '\(path(context.codingPath + [key]))'."
        case .typeMismatch(let type, let context):
            return "Invalid type for '\(path(context.codingPath))': expected \(typeName(type))."
        case .valueNotFound(let type, let context):
            return "Invalid type for '\(path(context.codingPath))': expected \(typeName(type)), got null."
        @unknown default:
            return "\(subject) could not be decoded."
        }
    }

    /// The field at fault, as `a.b[2].c`; nil when it is the whole document.
    public static func field(of error: DecodingError) -> String? {
        switch error {
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            context.codingPath.isEmpty ? nil : path(context.codingPath)
        case .keyNotFound(let key, let context):
            path(context.codingPath + [key])
        @unknown default:
            nil
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingPrefix(".").description
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type, is Float.Type: "a number"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: "\(type)".contains("Array") ? "an array" : "an object or other value"
        }
    }
}
