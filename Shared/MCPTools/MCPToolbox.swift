import ConduitProtocol
import Foundation
import HTTP
import Logging
import MCP
import Prometheus

/// A tool of a configured MCP server, as agents see it: `<server>__<tool>`.
public struct MCPToolDescription: Sendable, Hashable {
    public var server: String
    public var tool: String
    public var description: String
    /// The tool's JSON Schema for its arguments.
    public var inputSchema: JSONValue
    public var qualifiedName: String { "\(server)\(MCPToolbox.separator)\(tool)" }
}

/// What a tool call gave back: its text (text content joined; structured content when the server
/// sent it), and whether the server marked it an error.
public struct MCPToolResult: Sendable, Hashable {
    public var text: String
    public var isError: Bool
}

public struct MCPToolError: Error, CustomStringConvertible {
    public enum Kind: String, Sendable { case unknownTool = "unknown_tool", timeout, unavailable, failed }
    public var kind: Kind
    public var message: String
    public var description: String { message }
}

/// The MCP servers an operator configured, connected on first use through the official SDK's
/// client and kept: stdio servers as child processes (`ChildProcessTransport`), HTTP ones over
/// streamable HTTP (`StreamableHTTPTransport`). A call that times out is cancelled on the server
/// (`notifications/cancelled`); a connection that fails is dropped and made again on the next
/// call. At most `maxConcurrentCalls` calls run at once over all servers; past it a call fails
/// at once (`unavailable`). `conduit_mcp_calls_total{server,outcome}` counts them.
public final class MCPToolbox: Sendable {
    public static let separator = "__"
    public let servers: [MCPServerSpec]
    private let http: HTTPClient
    private let logger: Logger
    private let state = Connections()
    private let maxConcurrentCalls: Int
    private let calls: PrometheusCollectorRegistry

    public init(servers: [MCPServerSpec], http: HTTPClient, maxConcurrentCalls: Int = 16, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.servers = servers
        self.http = http
        self.maxConcurrentCalls = max(1, maxConcurrentCalls)
        self.calls = registry
        self.logger = logger
    }

    /// The servers of the file `CONDUIT_MCP_SERVERS` names (none when unset).
    public static func servers(fromFileAt path: String?, environment: [String: String]) throws -> [MCPServerSpec] {
        guard let path, !path.isEmpty else { return [] }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw MCPConfigurationError("CONDUIT_MCP_SERVERS", "cannot read \(path)")
        }
        return try MCPServerSpec.parse(text, environment: environment)
    }

    /// Every offered tool of every server that answers; a server that does not is left out
    /// (and logged), so one broken server does not take the others' tools away.
    public func tools() async -> [MCPToolDescription] {
        await withTaskGroup(of: [MCPToolDescription].self) { group in
            for spec in servers {
                group.addTask {
                    do {
                        return try await self.tools(of: spec)
                    } catch {
                        self.logger.warning("mcp server lists no tools", metadata: ["mcp_server": "\(spec.name)", "error": "\(error)"])
                        return []
                    }
                }
            }
            var all: [MCPToolDescription] = []
            for await some in group { all += some }
            return all.sorted { $0.qualifiedName < $1.qualifiedName }
        }
    }

    func tools(of spec: MCPServerSpec) async throws -> [MCPToolDescription] {
        try await withLimit(spec) { client in
            var listed: [MCP.Tool] = []
            var cursor: String?
            repeat {
                let page = try await client.listTools(cursor: cursor)
                listed += page.tools
                cursor = page.nextCursor
            } while cursor != nil && listed.count < 1000
            return listed.filter { spec.tools?.contains($0.name) ?? true }.map { tool in
                MCPToolDescription(server: spec.name, tool: tool.name, description: tool.description ?? "",
                                   inputSchema: Self.json(tool.inputSchema) ?? ["type": "object"])
            }
        }
    }

    /// Calls `<server>__<tool>` with `arguments` (a JSON object).
    public func call(_ qualifiedName: String, arguments: JSONValue) async throws -> MCPToolResult {
        guard let range = qualifiedName.range(of: Self.separator), let spec = servers.first(where: { $0.name == qualifiedName[..<range.lowerBound] }) else {
            throw MCPToolError(kind: .unknownTool, message: "no MCP server offers '\(qualifiedName)'")
        }
        let tool = String(qualifiedName[range.upperBound...])
        if let offered = spec.tools, !offered.contains(tool) {
            throw MCPToolError(kind: .unknownTool, message: "the MCP server '\(spec.name)' does not offer '\(tool)' here")
        }
        let values: [String: Value]
        do {
            values = try JSONDecoder().decode([String: Value].self, from: Data((arguments == .null ? JSONValue.object([:]) : arguments).jsonString.utf8))
        } catch {
            throw MCPToolError(kind: .failed, message: "the arguments of '\(qualifiedName)' are not a JSON object")
        }
        do {
            let result = try await withLimit(spec) { client -> MCPToolResult in
                let context: RequestContext<CallTool.Result> = try await client.callTool(name: tool, arguments: values)
                let answer: CallTool.Result
                do {
                    answer = try await withTaskCancellationHandler {
                        try await context.value
                    } onCancel: {
                        Task { try? await client.cancelRequest(context.requestID, reason: "cancelled by the caller") }
                    }
                } catch is CancellationError {
                    throw CancellationError()
                }
                return Self.result(answer)
            }
            count(spec.name, result.isError ? "tool_error" : "ok")
            return result
        } catch let error as MCPToolError {
            count(spec.name, error.kind.rawValue)
            throw error
        } catch let error as MCPError {
            count(spec.name, "failed")
            throw MCPToolError(kind: .failed, message: "'\(qualifiedName)' failed: \(error.localizedDescription)")
        }
    }

    /// Closes every connection (stops stdio servers).
    public func shutdown() async {
        for client in await state.removeAll() { await client.disconnect() }
    }

    private func count(_ server: String, _ outcome: String) {
        calls.makeCounter(name: "conduit_mcp_calls_total", labels: [("server", server), ("outcome", outcome)]).increment()
    }

    /// Runs `body` with the server's client under its timeout and the concurrency limit; a
    /// timeout or a broken connection drops the client.
    private func withLimit<T: Sendable>(_ spec: MCPServerSpec, _ body: @escaping @Sendable (Client) async throws -> T) async throws -> T {
        guard await state.enter(limit: maxConcurrentCalls) else {
            throw MCPToolError(kind: .unavailable, message: "\(maxConcurrentCalls) MCP calls are running already")
        }
        defer { Task { await state.leave() } }
        let client = try await self.client(for: spec)
        do {
            return try await Self.deadline(spec.timeout) { try await body(client) }
        } catch let error as MCPToolError {
            await state.drop(spec.name, client)
            await client.disconnect()
            throw error
        } catch let error as MCPError {
            if case .connectionClosed = error { await state.drop(spec.name, client) }
            if case .transportError = error { await state.drop(spec.name, client) }
            throw error
        }
    }

    private func client(for spec: MCPServerSpec) async throws -> Client {
        if let client = await state.client(spec.name) { return client }
        let client = Client(name: "conduit", version: "1.0")
        var quiet = logger
        // The SDK logs its own message loop's end at error level every time a connection closes.
        quiet.logLevel = .critical
        let transport: any Transport
        switch spec.connection {
        case .stdio(let command, let environment):
            transport = ChildProcessTransport(command: command, environment: environment, logger: quiet)
        case .http(let url, let headers):
            transport = StreamableHTTPTransport(url: url, headers: headers, http: http, timeout: spec.timeout, logger: quiet)
        }
        do {
            _ = try await Self.deadline(spec.timeout) { try await client.connect(transport: transport) }
        } catch {
            await client.disconnect()
            count(spec.name, "unavailable")
            throw MCPToolError(kind: .unavailable, message: "the MCP server '\(spec.name)' could not be reached: \(error)")
        }
        if let winner = await state.keep(spec.name, client), winner !== client {
            await client.disconnect()
            return winner
        }
        logger.info("mcp server connected", metadata: ["mcp_server": "\(spec.name)"])
        return client
    }

    /// `body`'s value, or a timeout error once `limit` passed. The SDK's client does not give up
    /// a request whose connection ended or that was cancelled, so `body` runs in a task of its own
    /// that is cancelled, not awaited, when the limit (or the caller's cancellation) comes first.
    static func deadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        let work = Task { await outcome.settle(await Result { try await body() }) }
        let timer = Task {
            try? await Task.sleep(for: limit)
            await outcome.settle(.failure(MCPToolError(kind: .timeout, message: "no answer within \(limit)")))
        }
        defer {
            work.cancel()
            timer.cancel()
        }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            Task { await outcome.settle(.failure(CancellationError())) }
        }
    }

    static func json(_ value: Value) -> JSONValue? {
        (try? JSONEncoder().encode(value)).flatMap { JSONValue.parse(Array($0)) }
    }

    static func result(_ answer: CallTool.Result) -> MCPToolResult {
        if let structured = answer.structuredContent, let json = json(structured) {
            return MCPToolResult(text: json.jsonString, isError: answer.isError ?? false)
        }
        let parts: [String] = answer.content.map { content in
            switch content {
            case .text(let text, _, _): text
            case .image(_, let mimeType, _, _): "[image \(mimeType)]"
            case .audio(_, let mimeType, _, _): "[audio \(mimeType)]"
            case .resource(let resource, _, _): resource.text ?? "[resource \(resource.uri)]"
            default: "[\(content)]"
            }
        }
        return MCPToolResult(text: parts.joined(separator: "\n"), isError: answer.isError ?? false)
    }
}

/// The first result settled wins; `value` waits for it.
private actor Outcome<T: Sendable> {
    private var result: Result<T, any Error>?
    private var waiters: [CheckedContinuation<T, any Error>] = []

    func settle(_ result: Result<T, any Error>) {
        guard self.result == nil else { return }
        self.result = result
        for waiter in waiters { waiter.resume(with: result) }
        waiters = []
    }

    func value() async throws -> T {
        if let result { return try result.get() }
        return try await withCheckedThrowingContinuation { waiters.append($0) }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// The connected clients and the calls running.
private actor Connections {
    private var clients: [String: Client] = [:]
    private var running = 0

    func client(_ name: String) -> Client? { clients[name] }

    /// Keeps `client` unless another connected first; returns the one kept.
    func keep(_ name: String, _ client: Client) -> Client? {
        if let existing = clients[name] { return existing }
        clients[name] = client
        return client
    }

    func drop(_ name: String, _ client: Client) {
        if clients[name] === client { clients[name] = nil }
    }

    func removeAll() -> [Client] {
        defer { clients = [:] }
        return Array(clients.values)
    }

    func enter(limit: Int) -> Bool {
        guard running < limit else { return false }
        running += 1
        return true
    }

    func leave() { running -= 1 }
}
