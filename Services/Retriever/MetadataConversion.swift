import ConduitProtocol
import Foundation
import Postgres
import SearchEngine

/// Document metadata as filterable chunk metadata: scalars and lists as they are, nested
/// objects flattened to dotted keys (`{"a":{"b":1}}` → `a.b`), plus the document's source.
enum MetadataConversion {
    /// A stored metadata value as JSON, for answers.
    static func json(_ value: MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .number(let number): .number(number)
        case .bool(let flag): .bool(flag)
        case .list(let items): .array(items.map(json))
        case .null: .null
        }
    }

    static func chunkMetadata(document: [String: JSONValue]?, source: String?) -> [String: MetadataValue] {
        var flat: [String: MetadataValue] = [:]
        func add(_ value: JSONValue, at key: String) {
            switch value {
            case .object(let object): for (child, nested) in object { add(nested, at: key + "." + child) }
            default: if let converted = convert(value) { flat[key] = converted }
            }
        }
        for (key, value) in document ?? [:] { add(value, at: key) }
        if let source, flat["source"] == nil { flat["source"] = .string(source) }
        return flat
    }

    private static func convert(_ value: JSONValue) -> MetadataValue? {
        switch value {
        case .null: .null
        case .bool(let value): .bool(value)
        case .number(let value): .number(value)
        case .string(let value): .string(value)
        case .array(let items): .list(items.compactMap(convert))
        case .object: nil
        }
    }
}
