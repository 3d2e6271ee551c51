import ConduitProtocol
import Foundation

/// A value of a flow (a step's `config`, the flow's `output`) with `{{ expression }}` in its
/// strings. A string that is one `{{ … }}` and nothing else becomes the expression's value,
/// whatever its type (`{{ steps.split.output }}` passes a list on as a list); otherwise each
/// `{{ … }}` is replaced by its value as text (a string as is, `null` as nothing, anything else
/// as JSON). Parsed once, when the flow loads.
public struct FlowTemplate: Sendable, Hashable {
    indirect enum Part: Sendable, Hashable {
        case constant(JSONValue)
        /// A string that is exactly one expression.
        case whole(FlowExpression)
        /// Text with expressions in it.
        case text([Piece])
        case array([Part])
        case object([String: Part])
    }

    enum Piece: Sendable, Hashable {
        case literal(String)
        case expression(FlowExpression)
    }

    let root: Part
    public let source: JSONValue

    /// A template's problem, with the path below the template's own (`messages[0].content`).
    public struct Problem: Error, Sendable {
        public let path: String
        public let message: String
    }

    public init(_ value: JSONValue) throws {
        source = value
        root = try Self.parse(value, path: "")
    }

    /// Every `steps.<name>` the template reads, and where.
    public var referencedSteps: [(step: String, path: String)] {
        var found: [(String, String)] = []
        func walk(_ part: Part, _ path: String) {
            switch part {
            case .constant: break
            case .whole(let expression): found += expression.referencedSteps.map { ($0, path) }
            case .text(let pieces):
                for case .expression(let expression) in pieces { found += expression.referencedSteps.map { ($0, path) } }
            case .array(let items): for (index, item) in items.enumerated() { walk(item, path + "[\(index)]") }
            case .object(let fields): for (key, field) in fields.sorted(by: { $0.key < $1.key }) { walk(field, path.isEmpty ? key : path + "." + key) }
            }
        }
        walk(root, "")
        return found
    }

    /// Every expression's roots other than `inputs` and `steps`, and where (unknown names).
    func unknownRoots(allowed: Set<String>) -> [(root: String, path: String)] {
        var found: [(String, String)] = []
        func check(_ expression: FlowExpression, _ path: String) {
            for root in expression.referencedRoots.sorted() where !allowed.contains(root) { found.append((root, path)) }
        }
        func walk(_ part: Part, _ path: String) {
            switch part {
            case .constant: break
            case .whole(let expression): check(expression, path)
            case .text(let pieces): for case .expression(let expression) in pieces { check(expression, path) }
            case .array(let items): for (index, item) in items.enumerated() { walk(item, path + "[\(index)]") }
            case .object(let fields): for (key, field) in fields.sorted(by: { $0.key < $1.key }) { walk(field, path.isEmpty ? key : path + "." + key) }
            }
        }
        walk(root, "")
        return found
    }

    public func render(_ scope: [String: JSONValue]) -> JSONValue {
        Self.render(root, scope)
    }

    private static func render(_ part: Part, _ scope: [String: JSONValue]) -> JSONValue {
        switch part {
        case .constant(let value): return value
        case .whole(let expression): return expression.evaluate(in: scope)
        case .text(let pieces):
            var text = ""
            for piece in pieces {
                switch piece {
                case .literal(let literal): text += literal
                case .expression(let expression): text += Self.text(of: expression.evaluate(in: scope))
                }
            }
            return .string(text)
        case .array(let items): return .array(items.map { render($0, scope) })
        case .object(let fields): return .object(fields.mapValues { render($0, scope) })
        }
    }

    /// A value as it reads inside text.
    public static func text(of value: JSONValue) -> String {
        switch value {
        case .null: ""
        case .string(let text): text
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number): number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        default: value.jsonString
        }
    }

    private static func parse(_ value: JSONValue, path: String) throws -> Part {
        switch value {
        case .string(let text):
            guard text.contains("{{") else { return .constant(value) }
            let pieces = try pieces(text, path: path)
            if pieces.count == 1, case .expression(let expression) = pieces[0] { return .whole(expression) }
            return .text(pieces)
        case .array(let items):
            let parts = try items.enumerated().map { try parse($0.element, path: path + "[\($0.offset)]") }
            return parts.allSatisfy { if case .constant = $0 { true } else { false } } ? .constant(value) : .array(parts)
        case .object(let fields):
            var parts: [String: Part] = [:]
            for (key, field) in fields { parts[key] = try parse(field, path: path.isEmpty ? key : path + "." + key) }
            return parts.values.allSatisfy { if case .constant = $0 { true } else { false } } ? .constant(value) : .object(parts)
        default:
            return .constant(value)
        }
    }

    /// `text` split at its `{{ … }}`; a string that is one expression with spaces around it
    /// counts as one expression.
    static func pieces(_ text: String, path: String) throws -> [Piece] {
        var pieces: [Piece] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            let before = rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw Problem(path: path, message: "'{{' without a closing '}}'")
            }
            let inside = rest[open.upperBound..<close.lowerBound].trimmedOfSpaces()
            guard !inside.isEmpty else { throw Problem(path: path, message: "an empty '{{ }}'") }
            let expression: FlowExpression
            do {
                expression = try FlowExpression(String(inside))
            } catch let error as FlowExpression.SyntaxError {
                throw Problem(path: path, message: "bad expression '\(inside)': \(error)")
            }
            if !before.isEmpty { pieces.append(.literal(String(before))) }
            pieces.append(.expression(expression))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { pieces.append(.literal(String(rest))) }
        if pieces.count > 1, pieces.contains(where: { if case .expression = $0 { true } else { false } }),
           pieces.allSatisfy({ if case .literal(let literal) = $0 { literal.allSatisfy(\.isWhitespace) } else { true } }),
           pieces.filter({ if case .expression = $0 { true } else { false } }).count == 1 {
            return pieces.filter { if case .expression = $0 { true } else { false } }
        }
        return pieces
    }
}

private extension Substring {
    func trimmedOfSpaces() -> Substring {
        var result = self
        while let first = result.first, first.isWhitespace { result = result.dropFirst() }
        while let last = result.last, last.isWhitespace { result = result.dropLast() }
        return result
    }
}
