import ConduitProtocol

/// The small, safe expression language of flow conditions and templates: literals (strings in
/// single or double quotes, numbers, `true`, `false`, `null`, lists `[a, b]`), field access
/// (`inputs.kind`, `steps.check.output.label`, `steps.split.output[0]`), comparisons (`==`,
/// `!=`, `<`, `<=`, `>`, `>=`), `in` / `not in` (an element of a list, a substring of a
/// string, a key of an object), `and`, `or`, `not` and parentheses. `and` and `or` give one of
/// their operands, as in Python (`a or b` is `a` when it is truthy, else `b`; so
/// `steps.x.output or 'none'` supplies a default), which a condition reads by truthiness. Nothing else: no calls, no
/// assignment, no arithmetic, so evaluating one cannot do anything but read the run's values.
public struct FlowExpression: Sendable, Hashable, CustomStringConvertible {
    public let source: String
    let root: Node

    indirect enum Node: Sendable, Hashable {
        case literal(JSONValue)
        case list([Node])
        case path(String, [Accessor])
        case not(Node)
        case and(Node, Node)
        case or(Node, Node)
        case compare(Comparison, Node, Node)
    }

    enum Accessor: Sendable, Hashable {
        case field(String)
        case index(Int)
    }

    enum Comparison: String, Sendable, Hashable {
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case contains = "in", notContains = "not in"
    }

    /// A malformed expression; `offset` is the character where reading stopped.
    public struct SyntaxError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public let offset: Int
        public var description: String { "\(message) (at character \(offset + 1))" }
    }

    /// At most this many characters, and nesting this deep: expressions come from uploads.
    public static let maxLength = 2000
    static let maxDepth = 32

    public init(_ source: String) throws {
        guard source.count <= Self.maxLength else { throw SyntaxError(message: "expression longer than \(Self.maxLength) characters", offset: 0) }
        var parser = Parser(tokens: try Lexer.tokens(source))
        root = try parser.expression(depth: 0)
        guard parser.atEnd else { throw SyntaxError(message: "unexpected '\(parser.current.text)'", offset: parser.current.offset) }
        self.source = source
    }

    public var description: String { source }

    /// Every `steps.<name>` the expression reads, in order of appearance.
    public var referencedSteps: [String] {
        var names: [String] = []
        func walk(_ node: Node) {
            switch node {
            case .literal: break
            case .list(let items): items.forEach(walk)
            case .path(let root, let accessors):
                if root == "steps", case .field(let name)? = accessors.first, !names.contains(name) { names.append(name) }
            case .not(let inner): walk(inner)
            case .and(let left, let right), .or(let left, let right), .compare(_, let left, let right): walk(left); walk(right)
            }
        }
        walk(root)
        return names
    }

    /// The roots the expression reads (`inputs`, `steps`, …).
    var referencedRoots: Set<String> {
        var roots: Set<String> = []
        func walk(_ node: Node) {
            switch node {
            case .literal: break
            case .list(let items): items.forEach(walk)
            case .path(let root, _): roots.insert(root)
            case .not(let inner): walk(inner)
            case .and(let left, let right), .or(let left, let right), .compare(_, let left, let right): walk(left); walk(right)
            }
        }
        walk(root)
        return roots
    }

    /// The value against `scope` (an object whose members are the roots). A missing field
    /// reads as `null`, never an error: a condition on a skipped step's output is just false.
    public func evaluate(in scope: [String: JSONValue]) -> JSONValue {
        Self.evaluate(root, scope)
    }

    /// `evaluate` read as a condition (`FlowExpression.isTruthy`).
    public func holds(in scope: [String: JSONValue]) -> Bool {
        Self.isTruthy(evaluate(in: scope))
    }

    /// `null`, `false`, `0`, `""`, `[]` and `{}` are false; everything else is true.
    public static func isTruthy(_ value: JSONValue) -> Bool {
        switch value {
        case .null: false
        case .bool(let flag): flag
        case .number(let number): number != 0
        case .string(let text): !text.isEmpty
        case .array(let items): !items.isEmpty
        case .object(let fields): !fields.isEmpty
        }
    }

    private static func evaluate(_ node: Node, _ scope: [String: JSONValue]) -> JSONValue {
        switch node {
        case .literal(let value):
            return value
        case .list(let items):
            return .array(items.map { evaluate($0, scope) })
        case .path(let root, let accessors):
            var value = scope[root] ?? .null
            for accessor in accessors {
                switch accessor {
                case .field(let name): value = value[name] ?? .null
                case .index(let index): value = value[index] ?? .null
                }
            }
            return value
        case .not(let inner):
            return .bool(!isTruthy(evaluate(inner, scope)))
        case .and(let left, let right):
            let first = evaluate(left, scope)
            return isTruthy(first) ? evaluate(right, scope) : first
        case .or(let left, let right):
            let first = evaluate(left, scope)
            return isTruthy(first) ? first : evaluate(right, scope)
        case .compare(let comparison, let left, let right):
            return .bool(compare(comparison, evaluate(left, scope), evaluate(right, scope)))
        }
    }

    private static func compare(_ comparison: Comparison, _ left: JSONValue, _ right: JSONValue) -> Bool {
        switch comparison {
        case .equal: return left == right
        case .notEqual: return left != right
        case .contains: return contains(right, left)
        case .notContains: return !contains(right, left)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            switch (left, right) {
            case (.number(let a), .number(let b)): order = a < b ? -1 : (a > b ? 1 : 0)
            case (.string(let a), .string(let b)): order = a < b ? -1 : (a > b ? 1 : 0)
            default: return false  // unordered kinds (or a missing value) compare false
            }
            switch comparison {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    private static func contains(_ container: JSONValue, _ element: JSONValue) -> Bool {
        switch container {
        case .array(let items): return items.contains(element)
        case .string(let text): if case .string(let part) = element { return text.contains(part) } else { return false }
        case .object(let fields): if case .string(let key) = element { return fields[key] != nil } else { return false }
        default: return false
        }
    }
}

// MARK: - Reading

private struct Token: Sendable {
    enum Kind: Sendable, Equatable { case identifier, string, number, symbol, end }
    var kind: Kind
    var text: String
    var offset: Int
}

private enum Lexer {
    static func tokens(_ source: String) throws -> [Token] {
        let characters = Array(source)
        var tokens: [Token] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace { index += 1; continue }
            let start = index
            if character.isLetter || character == "_" {
                while index < characters.count, characters[index].isLetter || characters[index].isNumber || characters[index] == "_" || characters[index] == "-" {
                    index += 1
                }
                tokens.append(Token(kind: .identifier, text: String(characters[start..<index]), offset: start))
            } else if character.isNumber || (character == "-" && index + 1 < characters.count && characters[index + 1].isNumber) {
                index += 1
                while index < characters.count, characters[index].isNumber || characters[index] == "." || characters[index] == "e" || characters[index] == "E" {
                    index += 1
                }
                tokens.append(Token(kind: .number, text: String(characters[start..<index]), offset: start))
            } else if character == "'" || character == "\"" {
                var text = ""
                index += 1
                var closed = false
                while index < characters.count {
                    let next = characters[index]
                    if next == "\\", index + 1 < characters.count {
                        let escaped = characters[index + 1]
                        text.append(escaped == "n" ? "\n" : escaped == "t" ? "\t" : escaped)
                        index += 2
                        continue
                    }
                    if next == character { closed = true; index += 1; break }
                    text.append(next)
                    index += 1
                }
                guard closed else { throw FlowExpression.SyntaxError(message: "unterminated string", offset: start) }
                tokens.append(Token(kind: .string, text: text, offset: start))
            } else {
                let pair = index + 1 < characters.count ? String(characters[index...index + 1]) : ""
                if ["==", "!=", "<=", ">="].contains(pair) {
                    tokens.append(Token(kind: .symbol, text: pair, offset: start))
                    index += 2
                } else if "<>()[].,".contains(character) {
                    tokens.append(Token(kind: .symbol, text: String(character), offset: start))
                    index += 1
                } else {
                    throw FlowExpression.SyntaxError(message: "unexpected character '\(character)'", offset: start)
                }
            }
        }
        tokens.append(Token(kind: .end, text: "end of expression", offset: characters.count))
        return tokens
    }
}

private struct Parser {
    let tokens: [Token]
    var position = 0

    init(tokens: [Token]) { self.tokens = tokens }

    var current: Token { tokens[position] }
    var atEnd: Bool { current.kind == .end }

    mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    func isKeyword(_ word: String) -> Bool { current.kind == .identifier && current.text == word }
    func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol && current.text == symbol }

    mutating func expect(_ symbol: String) throws {
        guard isSymbol(symbol) else { throw FlowExpression.SyntaxError(message: "expected '\(symbol)', found '\(current.text)'", offset: current.offset) }
        advance()
    }

    mutating func expression(depth: Int) throws -> FlowExpression.Node {
        guard depth < FlowExpression.maxDepth else { throw FlowExpression.SyntaxError(message: "expression nested too deeply", offset: current.offset) }
        var left = try conjunction(depth: depth)
        while isKeyword("or") {
            advance()
            left = .or(left, try conjunction(depth: depth))
        }
        return left
    }

    mutating func conjunction(depth: Int) throws -> FlowExpression.Node {
        var left = try negation(depth: depth)
        while isKeyword("and") {
            advance()
            left = .and(left, try negation(depth: depth))
        }
        return left
    }

    mutating func negation(depth: Int) throws -> FlowExpression.Node {
        if isKeyword("not") {
            advance()
            return .not(try negation(depth: depth + 1))
        }
        return try comparison(depth: depth)
    }

    mutating func comparison(depth: Int) throws -> FlowExpression.Node {
        let left = try primary(depth: depth)
        if current.kind == .symbol, let comparison = FlowExpression.Comparison(rawValue: current.text) {
            advance()
            return .compare(comparison, left, try primary(depth: depth))
        }
        if isKeyword("in") {
            advance()
            return .compare(.contains, left, try primary(depth: depth))
        }
        if isKeyword("not"), position + 1 < tokens.count, tokens[position + 1].kind == .identifier, tokens[position + 1].text == "in" {
            advance()
            advance()
            return .compare(.notContains, left, try primary(depth: depth))
        }
        return left
    }

    mutating func primary(depth: Int) throws -> FlowExpression.Node {
        let token = current
        switch token.kind {
        case .string:
            advance()
            return .literal(.string(token.text))
        case .number:
            guard let number = Double(token.text), number.isFinite else {
                throw FlowExpression.SyntaxError(message: "'\(token.text)' is not a number", offset: token.offset)
            }
            advance()
            return .literal(.number(number))
        case .identifier:
            switch token.text {
            case "true": advance(); return .literal(.bool(true))
            case "false": advance(); return .literal(.bool(false))
            case "null": advance(); return .literal(.null)
            case "and", "or", "not", "in":
                throw FlowExpression.SyntaxError(message: "expected a value, found '\(token.text)'", offset: token.offset)
            default:
                advance()
                return .path(token.text, try accessors())
            }
        case .symbol where token.text == "(":
            advance()
            let inner = try expression(depth: depth + 1)
            try expect(")")
            return inner
        case .symbol where token.text == "[":
            advance()
            var items: [FlowExpression.Node] = []
            if !isSymbol("]") {
                items.append(try expression(depth: depth + 1))
                while isSymbol(",") {
                    advance()
                    items.append(try expression(depth: depth + 1))
                }
            }
            try expect("]")
            return .list(items)
        default:
            throw FlowExpression.SyntaxError(message: "expected a value, found '\(token.text)'", offset: token.offset)
        }
    }

    mutating func accessors() throws -> [FlowExpression.Accessor] {
        var accessors: [FlowExpression.Accessor] = []
        while true {
            if isSymbol(".") {
                advance()
                guard current.kind == .identifier else {
                    throw FlowExpression.SyntaxError(message: "expected a field name after '.', found '\(current.text)'", offset: current.offset)
                }
                accessors.append(.field(current.text))
                advance()
            } else if isSymbol("[") {
                advance()
                switch current.kind {
                case .number:
                    guard let index = Int(current.text), index >= 0 else {
                        throw FlowExpression.SyntaxError(message: "an index is a whole number from 0", offset: current.offset)
                    }
                    accessors.append(.index(index))
                case .string:
                    accessors.append(.field(current.text))
                default:
                    throw FlowExpression.SyntaxError(message: "expected an index or a quoted field name, found '\(current.text)'", offset: current.offset)
                }
                advance()
                try expect("]")
            } else {
                return accessors
            }
        }
    }
}
