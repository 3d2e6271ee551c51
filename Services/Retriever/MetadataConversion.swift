import ConduitProtocol
import Foundation
import Postgres
import SearchEngine

/// Document metadata as filterable chunk metadata: scalars and lists as they are, nested
/// objects flattened to dotted keys (`{"a":{"b":1}}` → `a.b`), plus the document's source.
enum MetadataConversion {
    static func chunkMetadata(document: [String: JSONValue]?, source: String?) -> [String: JSONValue] {
        var flat: [String: JSONValue] = [:]
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

    private static func convert(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .null: .null
        case .bool(let value): .bool(value)
        case .number(let value): .number(value)
        case .string(let value): .string(value)
        case .array(let items): .array(items.compactMap(convert))
        case .object: nil
        }
    }
}
