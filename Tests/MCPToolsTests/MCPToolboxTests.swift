import ConduitProtocol
import Foundation
import HTTP
import Logging
@testable import MCPTools
import Prometheus
import Testing
import TestSupport

/// The toolbox against real MCP servers: PyPI `mcp-server-time` over stdio and the tests' facts
/// server (PyPI `mcp`) over streamable HTTP, answering with SSE streams and with plain JSON.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct MCPToolboxTests {
    static let ssePort = 58_931
    static let jsonPort = 58_933
    static let slowPort = 58_934

    static func toolbox(_ servers: [MCPServerSpec], registry: PrometheusCollectorRegistry = .init()) -> MCPToolbox {
        MCPToolbox(servers: servers, http: HTTPClient(logger: Logger(label: "mcp-test")), registry: registry, logger: Logger(label: "mcp-test"))
    }

    @Test func toolsOfAStdioAndTwoHTTPServersAreListedAndCalled() async throws {
        let python = try #require(MCPTestServers.python, "make test provides CONDUIT_TEST_MCP_PYTHON")
        let sse = try await MCPTestServers.startFacts(python: python, port: Self.ssePort)
        let json = try await MCPTestServers.startFacts(python: python, port: Self.jsonPort, json: true)
        defer { for server in [sse, json] { server.signal(SIGKILL) } }
        let registry = PrometheusCollectorRegistry()
        let toolbox = Self.toolbox([
            MCPServerSpec(name: "time", connection: .stdio(command: MCPTestServers.timeCommand(python: python), environment: [:])),
            MCPServerSpec(name: "facts", connection: .http(url: "http://127.0.0.1:\(Self.ssePort)/mcp", headers: [:]), tools: ["capital_of"]),
            MCPServerSpec(name: "plain", connection: .http(url: "http://127.0.0.1:\(Self.jsonPort)/mcp", headers: [:])),
        ], registry: registry)

        let names = await toolbox.tools().map(\.qualifiedName)
        #expect(names.contains("time__get_current_time") && names.contains("time__convert_time"), "\(names)")
        // The allow-list offers capital_of only; the other server offers everything.
        #expect(names.contains("facts__capital_of") && !names.contains("facts__word_count"), "\(names)")
        #expect(names.contains("plain__word_count") && names.contains("plain__wait"), "\(names)")
        let schema = await toolbox.tools().first { $0.qualifiedName == "facts__capital_of" }?.inputSchema
        #expect(schema?["properties"]?["country"] != nil, "\(String(describing: schema))")

        let now = try await toolbox.call("time__get_current_time", arguments: ["timezone": "Asia/Tokyo"])
        #expect(!now.isError && now.text.contains("Asia/Tokyo"), "\(now.text)")
        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        #expect(now.text.contains(String(year)), "\(now.text)")
        #expect(try await toolbox.call("facts__capital_of", arguments: ["country": "France"]).text.contains("Paris"))
        #expect(try await toolbox.call("plain__word_count", arguments: ["text": "one two three"]).text.contains("3"))
        // Many at once over one session each.
        let capitals = try await withThrowingTaskGroup(of: String.self) { group in
            for country in ["Japan", "Kenya", "Peru", "France"] {
                group.addTask { try await toolbox.call("facts__capital_of", arguments: ["country": .string(country)]).text }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(capitals.count == 4 && capitals.contains { $0.contains("Nairobi") })

        // Refused before any server sees it.
        let hidden = await #expect(throws: MCPToolError.self) { try await toolbox.call("facts__word_count", arguments: ["text": "a"]) }
        #expect(hidden?.kind == .unknownTool)
        let unknown = await #expect(throws: MCPToolError.self) { try await toolbox.call("nobody__x", arguments: [:]) }
        #expect(unknown?.kind == .unknownTool)
        // A tool's own error is a result marked as one, not a failure of the call.
        let bad = try await toolbox.call("time__get_current_time", arguments: ["timezone": "Mars/Olympus"])
        #expect(bad.isError, "\(bad.text)")

        let metrics = registry.emitToString()
        #expect(metrics.contains(#"conduit_mcp_calls_total{server="facts",outcome="ok"} 5"#), "\(metrics)")
        #expect(metrics.contains(#"conduit_mcp_calls_total{server="time",outcome="tool_error"} 1"#), "\(metrics)")
        await toolbox.shutdown()
    }

    @Test func aSlowToolTimesOutAndTheNextCallWorksAndABrokenServerTakesNoOthersTools() async throws {
        let python = try #require(MCPTestServers.python, "make test provides CONDUIT_TEST_MCP_PYTHON")
        let json = try await MCPTestServers.startFacts(python: python, port: Self.slowPort, json: true)
        defer { json.signal(SIGKILL) }
        let toolbox = Self.toolbox([
            MCPServerSpec(name: "plain", connection: .http(url: "http://127.0.0.1:\(Self.slowPort)/mcp", headers: [:]), timeout: .seconds(2)),
            MCPServerSpec(name: "gone", connection: .http(url: "http://127.0.0.1:9/mcp", headers: [:]), timeout: .seconds(2)),
            MCPServerSpec(name: "missing", connection: .stdio(command: ["/nonexistent/mcp-server"], environment: [:]), timeout: .seconds(2)),
        ])
        let started = ContinuousClock.now
        let slow = await #expect(throws: MCPToolError.self) { try await toolbox.call("plain__wait", arguments: ["seconds": 20]) }
        #expect(slow?.kind == .timeout)
        #expect(ContinuousClock.now - started < .seconds(6))
        #expect(try await toolbox.call("plain__word_count", arguments: ["text": "still here"]).text.contains("2"))

        let names = await toolbox.tools().map(\.qualifiedName)
        #expect(names.contains("plain__word_count") && !names.contains { $0.hasPrefix("gone__") || $0.hasPrefix("missing__") }, "\(names)")
        let gone = await #expect(throws: MCPToolError.self) { try await toolbox.call("gone__anything", arguments: [:]) }
        #expect(gone?.kind == .unavailable)
        let missing = await #expect(throws: MCPToolError.self) { try await toolbox.call("missing__anything", arguments: [:]) }
        #expect(missing?.kind == .unavailable)
        await toolbox.shutdown()
    }

    @Test func aStdioServerIsStoppedAtShutdownAndSeesNoneOfOurEnvironment() async throws {
        // A shell as the "server": it records its environment and open descriptors, then waits.
        let directory = TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("mcp-stdio"))
        let script = "env > \(directory)/env; echo $$ > \(directory)/pid; exec sleep 60"
        setenv("CONDUIT_TEST_SECRET", "do-not-pass", 1)
        let toolbox = Self.toolbox([
            MCPServerSpec(name: "shell", connection: .stdio(command: ["/bin/sh", "-c", script], environment: ["GIVEN": "yes"]), timeout: .seconds(2)),
        ])
        let call = Task { try await toolbox.call("shell__x", arguments: [:]) }
        #expect(try await eventually(within: .seconds(10)) { FileManager.default.fileExists(atPath: directory + "/pid") })
        try await Task.sleep(for: .milliseconds(300))  // the shell has become `sleep` (same pid)
        let pid = try #require(Int32(try String(contentsOfFile: directory + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int($0) }.sorted()
        #expect(descriptors == [0, 1, 2], "inherited descriptors: \(descriptors)")
        let environment = try String(contentsOfFile: directory + "/env", encoding: .utf8)
        #expect(environment.contains("GIVEN=yes") && !environment.contains("CONDUIT_TEST_SECRET"), "\(environment)")
        // It never answers initialize: unavailable after the server's timeout, and stopped.
        let failed = await #expect(throws: MCPToolError.self) { try await call.value }
        #expect(failed?.kind == .unavailable)
        await toolbox.shutdown()
        #expect(try await eventually(within: .seconds(5)) { kill(pid, 0) != 0 }, "the server outlived the toolbox")
    }

    @Test func theServersFileIsCheckedWithThePathOfEachProblem() throws {
        let good = try MCPServerSpec.parse("""
            servers:
              - name: time
                command: [python3, -m, mcp_server_time]
                env: {TOKEN: "t-${SECRET}"}
              - name: facts
                url: http://127.0.0.1:8931/mcp
                headers: {Authorization: "Bearer ${SECRET}"}
                timeout_s: 2.5
                tools: [capital_of]
            """, environment: ["SECRET": "s3"])
        #expect(good.map(\.name) == ["time", "facts"])
        #expect(good[0].connection == .stdio(command: ["python3", "-m", "mcp_server_time"], environment: ["TOKEN": "t-s3"]))
        #expect(good[1].connection == .http(url: "http://127.0.0.1:8931/mcp", headers: ["Authorization": "Bearer s3"]))
        #expect(good[1].timeout == .milliseconds(2500) && good[1].tools == ["capital_of"])

        func problem(_ text: String) -> String {
            do {
                _ = try MCPServerSpec.parse(text, environment: [:])
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(problem("servers: 3") == "servers: required: a list of servers")
        #expect(problem("servers:\n  - name: a b\n    url: http://x/mcp").hasPrefix("servers[0].name:"))
        #expect(problem("servers:\n  - name: a\n    url: http://x/mcp\n  - name: a\n    url: http://y/mcp") == "servers[1].name: 'a' is configured twice")
        #expect(problem("servers:\n  - name: a\n    url: ftp://x") == "servers[0].url: an http(s) URL")
        #expect(problem("servers:\n  - name: a\n    url: http://x/mcp\n    command: [x]").hasPrefix("servers[0]: needs exactly one"))
        #expect(problem("servers:\n  - name: a\n    url: http://x/mcp\n    headers: {A: \"${NOPE}\"}") == "servers[0].headers.A: ${NOPE} is not set")
        #expect(problem("servers:\n  - name: a\n    url: http://x/mcp\n    timeout_s: 0") == "servers[0].timeout_s: seconds, above 0 and at most 600")
        #expect(problem("servers:\n  - name: a\n    url: http://x/mcp\n    retries: 3") == "servers[0].retries: unknown field")
    }
}
