import ConduitProtocol
import Foundation
import HTTP
import Logging
import MCP

/// MCP's streamable HTTP transport over our HTTP client: each message is a POST; the server
/// answers with one JSON message, an SSE stream of them, or 202 (a notification). The session id
/// the server gives at `initialize` (`Mcp-Session-Id`) and the protocol version it agreed are
/// sent on every later request; `disconnect` ends the session with a DELETE. A 404 on a session
/// means the server forgot it: the connection ends (the toolbox connects again).
///
/// The SDK's own HTTP transport reads SSE only on Apple platforms; this one runs wherever curl does.
public actor StreamableHTTPTransport: Transport {
    public nonisolated let logger: Logger
    private let url: String
    private let headers: [String: String]
    private let http: HTTPClient
    private let timeout: Duration
    private let maxMessageBytes: Int
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var sessionID: String?
    private var protocolVersion: String?
    private var closed = false

    public init(url: String, headers: [String: String], http: HTTPClient, timeout: Duration, maxMessageBytes: Int = 8 << 20, logger: Logger) {
        self.url = url
        self.headers = headers
        self.http = http
        self.timeout = timeout
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self, throwing: (any Error).self)
    }

    public func connect() async throws {}

    public func disconnect() async {
        guard !closed else { return }
        closed = true
        continuation.finish(throwing: MCPError.connectionClosed)
        if let sessionID {
            _ = try? await http.execute(HTTPRequest(method: "DELETE", url: url, headers: requestHeaders(session: sessionID), timeout: .seconds(5)))
        }
    }

    public func receive() -> AsyncThrowingStream<Data, any Error> { stream }

    public func send(_ data: Data) async throws {
        guard !closed else { throw MCPError.connectionClosed }
        let isInitialize = JSONValue.parse(Array(data))?["method"] == "initialize"
        var request = HTTPRequest(method: "POST", url: url, headers: requestHeaders(session: sessionID), body: Array(data), timeout: timeout)
        request.headers.append((name: "Content-Type", value: "application/json"))
        let response = try await http.execute(request)
        if isInitialize, let session = response.header("Mcp-Session-Id") { sessionID = session }
        switch response.status {
        case 202:
            _ = try? await response.body.collect(upTo: 64 << 10)
            return
        case 200:
            break
        case 404 where sessionID != nil:
            await disconnect()
            throw MCPError.connectionClosed
        default:
            let body = (try? await response.body.collect(upTo: 16 << 10)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            throw MCPError.internalError("the MCP server answered \(response.status): \(body.prefix(300))")
        }
        let contentType = (response.header("Content-Type") ?? "").lowercased()
        if contentType.hasPrefix("text/event-stream") {
            for try await event in response.body.events where event.event == nil || event.event == "message" {
                guard event.data.utf8.count <= maxMessageBytes else { throw MCPError.transportError(POSIXError(.EMSGSIZE)) }
                deliver(Data(event.data.utf8), initialize: isInitialize)
            }
        } else {
            let body = try await response.body.collect(upTo: maxMessageBytes)
            if !body.isEmpty { deliver(Data(body), initialize: isInitialize) }
        }
    }

    private func deliver(_ message: Data, initialize: Bool) {
        if initialize, let version = JSONValue.parse(Array(message))?["result"]?["protocolVersion"]?.stringValue {
            protocolVersion = version
        }
        continuation.yield(message)
    }

    private func requestHeaders(session: String?) -> [(name: String, value: String)] {
        var out = headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        out.append((name: "Accept", value: "application/json, text/event-stream"))
        if let session { out.append((name: "Mcp-Session-Id", value: session)) }
        if let protocolVersion { out.append((name: "MCP-Protocol-Version", value: protocolVersion)) }
        return out
    }
}
