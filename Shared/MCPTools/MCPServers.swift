import Foundation
import Yams

/// One MCP server an operator configured: a command started over stdio, or a streamable-HTTP
/// endpoint. Its tools reach agents as `<name>__<tool>`.
public struct MCPServerSpec: Sendable, Hashable {
    public enum Connection: Sendable, Hashable {
        /// A child process speaking JSON-RPC lines on stdin/stdout (the program, then its arguments).
        case stdio(command: [String], environment: [String: String])
        /// A streamable-HTTP endpoint (POST per message; JSON or SSE answers).
        case http(url: String, headers: [String: String])
    }

    public var name: String
    public var connection: Connection
    /// How long one call (and the connection's set-up) may take.
    public var timeout: Duration
    /// The tools offered; nil offers every tool the server lists.
    public var tools: Set<String>?

    public init(name: String, connection: Connection, timeout: Duration = .seconds(30), tools: Set<String>? = nil) {
        self.name = name
        self.connection = connection
        self.timeout = timeout
        self.tools = tools
    }
}

/// A configuration the operator must fix; names where.
public struct MCPConfigurationError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var problem: String
    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}

extension MCPServerSpec {
    /// Server names become tool-name prefixes, which models see: letters, digits, `-`, `_`.
    static func isValidName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count) && name.utf8.first.map { $0 != UInt8(ascii: "-") && $0 != UInt8(ascii: "_") } == true
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }

    /// The servers of a YAML (or JSON) document:
    ///
    /// ```yaml
    /// servers:
    ///   - name: time
    ///     command: [python3, -m, mcp_server_time]
    ///     env: {TZ: UTC}
    ///   - name: facts
    ///     url: http://127.0.0.1:8931/mcp
    ///     headers: {Authorization: "Bearer ${FACTS_TOKEN}"}
    ///     timeout_s: 10
    ///     tools: [capital_of]
    /// ```
    ///
    /// `${VAR}` in `env` and `headers` values is replaced from `environment`, so secrets stay
    /// out of the file; a variable that is not set is an error.
    public static func parse(_ text: String, environment: [String: String]) throws -> [MCPServerSpec] {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw MCPConfigurationError("mcp servers", "not YAML or JSON: \(error)")
        }
        guard let root = document as? [String: Any], let list = root["servers"] as? [Any] else {
            throw MCPConfigurationError("servers", "required: a list of servers")
        }
        var seen = Set<String>()
        return try list.enumerated().map { index, item in
            let path = "servers[\(index)]"
            guard let entry = item as? [String: Any] else { throw MCPConfigurationError(path, "must be a mapping") }
            let known: Set<String> = ["name", "command", "env", "url", "headers", "timeout_s", "tools"]
            if let unknown = entry.keys.sorted().first(where: { !known.contains($0) }) {
                throw MCPConfigurationError("\(path).\(unknown)", "unknown field")
            }
            guard let name = entry["name"] as? String, isValidName(name) else {
                throw MCPConfigurationError("\(path).name", "required: letters, digits, '-' or '_' (at most 32)")
            }
            guard seen.insert(name).inserted else { throw MCPConfigurationError("\(path).name", "'\(name)' is configured twice") }
            let connection: Connection
            switch (entry["command"], entry["url"]) {
            case (let command?, nil):
                let words: [String]
                if let list = command as? [Any] {
                    words = list.map { "\($0)" }
                } else if let line = command as? String {
                    words = line.split(separator: " ").map(String.init)
                } else {
                    throw MCPConfigurationError("\(path).command", "a program and its arguments")
                }
                guard !words.isEmpty else { throw MCPConfigurationError("\(path).command", "must not be empty") }
                connection = .stdio(command: words, environment: try strings(entry["env"], "\(path).env", environment))
            case (nil, let url as String):
                guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                    throw MCPConfigurationError("\(path).url", "an http(s) URL")
                }
                connection = .http(url: url, headers: try strings(entry["headers"], "\(path).headers", environment))
            default:
                throw MCPConfigurationError(path, "needs exactly one of 'command' (stdio) and 'url' (streamable HTTP)")
            }
            var timeout = Duration.seconds(30)
            if let value = entry["timeout_s"] {
                guard let seconds = (value as? Int).map(Double.init) ?? (value as? Double), seconds > 0, seconds <= 600 else {
                    throw MCPConfigurationError("\(path).timeout_s", "seconds, above 0 and at most 600")
                }
                timeout = .milliseconds(Int(seconds * 1000))
            }
            var tools: Set<String>?
            if let value = entry["tools"] {
                guard let list = value as? [Any], list.allSatisfy({ $0 is String }) else {
                    throw MCPConfigurationError("\(path).tools", "a list of tool names")
                }
                tools = Set(list.compactMap { $0 as? String })
            }
            return MCPServerSpec(name: name, connection: connection, timeout: timeout, tools: tools)
        }
    }

    private static func strings(_ value: Any?, _ path: String, _ environment: [String: String]) throws -> [String: String] {
        guard let value else { return [:] }
        guard let map = value as? [String: Any] else { throw MCPConfigurationError(path, "a mapping of names to strings") }
        var out: [String: String] = [:]
        for (key, raw) in map {
            out[key] = try substitute("\(raw)", "\(path).\(key)", environment)
        }
        return out
    }

    /// `${VAR}` replaced from the environment.
    static func substitute(_ text: String, _ path: String, _ environment: [String: String]) throws -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { throw MCPConfigurationError(path, "'${' without '}'") }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] else { throw MCPConfigurationError(path, "${\(name)} is not set") }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}
