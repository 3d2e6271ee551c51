import Foundation

/// The MCP servers the agent tests use: `Tests/MCP/facts_server.py` over streamable HTTP and
/// PyPI `mcp-server-time` over stdio, both from the virtualenv `make test` installs
/// (`CONDUIT_TEST_MCP_PYTHON`).
public enum MCPTestServers {
    public static var python: String? { ProcessInfo.processInfo.environment["CONDUIT_TEST_MCP_PYTHON"] }

    /// The stdio time server's command line (UTC as its local zone); its stderr, which the
    /// transport discards, is kept in the scratch directory's `mcp/time.err`.
    public static func timeCommand(python: String) -> [String] {
        let log = TestEnvironment.scratchDirectory("mcp") + "/time.err"
        return ["/bin/sh", "-c", #"exec "$0" -m mcp_server_time --local-timezone UTC 2>>"$1""#, python, log]
    }

    /// Starts the facts server on `port` (JSON answers when `json`, SSE streams otherwise) and
    /// waits until it accepts connections.
    public static func startFacts(python: String, port: Int, json: Bool = false) async throws -> ChildProcess {
        let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/MCP/facts_server.py").path
        let log = TestEnvironment.scratchDirectory("mcp") + "/facts-\(port).log"
        let child = try ChildProcess(executable: python, arguments: [script, String(port)] + (json ? ["json"] : []), outputPath: log)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if RawHTTP.canConnect(port: port) { return child }
            if child.hasExited { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        child.signal(SIGKILL)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw StackControlError(message: "the facts MCP server did not start on \(port): \(text.suffix(2000))")
    }
}
