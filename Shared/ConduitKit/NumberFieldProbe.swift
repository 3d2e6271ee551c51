import ConduitProtocol
import Foundation

/// Finds the field behind a number the decoder refused without saying where. Foundation's
/// `JSONDecoder` reports a number that does not fit its field (`"n": 1.5` for an `Int`) as
/// corrupt data at the top of the document, which reads as "not valid JSON". On that error
/// path only, each number that no `Int` can hold is replaced by 0 in turn; the one whose
/// replacement lets the document decode (or fail elsewhere) is the field to name.
enum NumberFieldProbe {
    static let maxCandidates = 64

    static func field<T: Decodable>(of type: T.Type, in data: Data) -> String? {
        guard let document = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        var candidates: [[PathComponent]] = []
        collect(document, path: [], into: &candidates)
        for path in candidates.prefix(maxCandidates) {
            guard let patched = try? JSONEncoder().encode(replacing(path, in: document)) else { continue }
            do {
                _ = try JSONDecoder().decode(T.self, from: patched)
                return render(path)
            } catch let DecodingError.dataCorrupted(context) where context.codingPath.isEmpty {
                continue
            } catch {
                return render(path)
            }
        }
        return nil
    }

    enum PathComponent { case key(String), index(Int) }

    private static func collect(_ value: JSONValue, path: [PathComponent], into candidates: inout [[PathComponent]]) {
        switch value {
        case .number(let number) where number.rounded() != number || abs(number) >= 9.2e18:
            candidates.append(path)
        case .array(let items):
            for (index, item) in items.enumerated() { collect(item, path: path + [.index(index)], into: &candidates) }
        case .object(let fields):
            for (key, item) in fields.sorted(by: { $0.key < $1.key }) { collect(item, path: path + [.key(key)], into: &candidates) }
        default:
            break
        }
    }

    private static func replacing(_ path: [PathComponent], in value: JSONValue) -> JSONValue {
        guard let first = path.first else { return .number(0) }
        let rest = Array(path.dropFirst())
        switch (first, value) {
        case (.key(let key), .object(var fields)):
            fields[key] = fields[key].map { replacing(rest, in: $0) }
            return .object(fields)
        case (.index(let index), .array(var items)) where items.indices.contains(index):
            items[index] = replacing(rest, in: items[index])
            return .array(items)
        default:
            return value
        }
    }

    private static func render(_ path: [PathComponent]) -> String {
        path.map { component in
            switch component {
            case .key(let key): ".\(key)"
            case .index(let index): "[\(index)]"
            }
        }.joined().trimmingPrefix(".").description
    }
}
