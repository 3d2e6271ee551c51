import ConduitProtocol
import Prompts

/// Two versions side by side: the template's lines (a chat template's messages as
/// `role: content` lines), kept, removed or added, and the config's keys that changed.
enum PromptDiff {
    /// Above this many lines on either side the lines are compared as wholes (the table is
    /// quadratic).
    static let maxLines = 2000

    static func between(_ old: PromptVersion, _ new: PromptVersion) -> JSONValue {
        let before = lines(old.body), after = lines(new.body)
        var changes: [JSONValue] = []
        for (kind, line) in diff(before, after) {
            changes.append(.object(["op": .string(kind), "line": .string(line)]))
        }
        var config: [String: JSONValue] = [:]
        for key in Set(old.config.keys).union(new.config.keys).sorted() where old.config[key] != new.config[key] {
            config[key] = .object(["from": old.config[key] ?? .null, "to": new.config[key] ?? .null])
        }
        return .object([
            "name": .string(new.name), "from": .number(Double(old.version)), "to": .number(Double(new.version)),
            "type_changed": .bool(old.body.type != new.body.type), "lines": .array(changes), "config": .object(config),
            "identical": .bool(old.body == new.body && old.config == new.config),
        ])
    }

    static func lines(_ body: PromptBody) -> [String] {
        switch body {
        case .text(let text): text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        case .chat(let messages):
            messages.flatMap { message -> [String] in
                switch message {
                case .message(let role, let content): content.split(separator: "\n", omittingEmptySubsequences: false).map { "\(role): \($0)" }
                case .placeholder(let name): ["{{\(name)}} (placeholder)"]
                }
            }
        }
    }

    /// A longest-common-subsequence line diff: `=` kept, `-` removed, `+` added.
    static func diff(_ a: [String], _ b: [String]) -> [(String, String)] {
        guard a.count <= maxLines, b.count <= maxLines else {
            return a == b ? a.map { ("=", $0) } : a.map { ("-", $0) } + b.map { ("+", $0) }
        }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        var result: [(String, String)] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                result.append(("=", a[i])); i += 1; j += 1
            } else if j < b.count, i == a.count || table[i][j + 1] >= table[i + 1][j] {
                result.append(("+", b[j])); j += 1
            } else {
                result.append(("-", a[i])); i += 1
            }
        }
        return result
    }
}
