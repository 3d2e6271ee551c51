import Foundation
import HTTP
import Logging
import Testing
import TestSupport

/// The libcurl client against a local HTTP/1.1 server (TestHTTPServer) on a loopback port.
@Suite(.timeLimit(.minutes(4)))
struct HTTPClientTests {
    static func client(_ configuration: HTTPClientConfiguration = .init()) -> HTTPClient {
        HTTPClient(configuration: configuration, logger: Logger(label: "http"))
    }

    @Test func postsABodyAndHeadersAndReadsTheResponse() async throws {
        let server = try TestHTTPServer { request, connection in
            let echo = "\(request.method) \(request.path) \(request.headers["x-test"] ?? "-") " + String(decoding: request.body, as: UTF8.self)
            connection.respond(status: 201, headers: ["X-Reply": "yes"], body: Array(echo.utf8))
        }
        let http = Self.client()
        let response = try await http.execute(HTTPRequest(method: "POST", url: server.baseURL + "/v1/echo?q=1", headers: [("X-Test", "abc")], body: Array(#"{"a":1}"#.utf8)))
        #expect(response.status == 201)
        #expect(response.header("x-reply") == "yes")
        #expect(String(decoding: try await response.body.collect(upTo: 1 << 20), as: UTF8.self) == #"POST /v1/echo?q=1 abc {"a":1}"#)
        await http.shutdown()
    }

    @Test func readsAChunkedSSEStreamEventByEvent() async throws {
        // The server sends each event only after the client has seen the previous one, so the
        // test fails if the client buffers the body instead of streaming it.
        let seen = AsyncStream<Int>.makeStream()
        let gate = Locked(seen.stream.makeAsyncIterator())
        let server = try TestHTTPServer { _, connection in
            connection.startChunked(contentType: "text/event-stream")
            for index in 1...3 {
                // Each event split across two chunks, CRLF line endings on the second.
                connection.writeChunk("event: delta\ndata: {\"n\":\(index)")
                connection.writeChunk("}\r\nid: \(index)\r\n\r\n")
                let semaphore = DispatchSemaphore(value: 0)
                Task {
                    var iterator = gate.withLock { $0 }
                    _ = await iterator.next()
                    gate.withLock { $0 = iterator }
                    semaphore.signal()
                }
                if semaphore.wait(timeout: .now() + 60) == .timedOut { connection.close(); return }
            }
            connection.writeChunk(": keep-alive comment\n\ndata: [DONE]\n\n")
            connection.endChunks()
        }
        let http = Self.client()
        let response = try await http.execute(HTTPRequest(url: server.baseURL + "/stream"))
        #expect(response.status == 200)
        var events: [SSEEvent] = []
        for try await event in response.body.events {
            events.append(event)
            seen.continuation.yield(events.count)
        }
        #expect(events == [
            SSEEvent(event: "delta", data: #"{"n":1}"#, id: "1"),
            SSEEvent(event: "delta", data: #"{"n":2}"#, id: "2"),
            SSEEvent(event: "delta", data: #"{"n":3}"#, id: "3"),
            SSEEvent(data: "[DONE]", id: "3"),
        ])
        await http.shutdown()
    }

    @Test func totalTimeoutFailsWithTimeout() async throws {
        let server = try TestHTTPServer { _, connection in
            _ = connection.waitForPeerClose(seconds: 30)
        }
        let http = Self.client()
        let error = try await #require(throws: HTTPClientError.self) {
            try await http.execute(HTTPRequest(url: server.baseURL + "/slow", timeout: .milliseconds(300)))
        }
        // The server would answer after 30 s at the earliest; only the client's timeout ends this sooner.
        #expect(error.code == .timeout)
        await http.shutdown()
    }

    @Test func connectFailureIsReported() async throws {
        let http = Self.client()
        // Port 1 on loopback: nothing listens there.
        let error = try await #require(throws: HTTPClientError.self) { try await http.execute(HTTPRequest(url: "http://127.0.0.1:1/")) }
        #expect(error.code == .connectFailed)
        await http.shutdown()
    }

    @Test func cancellingTheCallerClosesTheConnection() async throws {
        let closed = Locked(false)
        let server = try TestHTTPServer { _, connection in
            connection.startChunked(contentType: "text/event-stream")
            connection.writeChunk("data: first\n\n")
            // Stream stalls; only the client closing ends this.
            closed.withLock { $0 = connection.waitForPeerClose(seconds: 150) }
        }
        let http = Self.client()
        let firstEvent = AsyncStream<Void>.makeStream()
        let reader = Task {
            let response = try await http.execute(HTTPRequest(url: server.baseURL + "/stream"))
            for try await _ in response.body.events {
                firstEvent.continuation.yield()
            }
        }
        var iterator = firstEvent.stream.makeAsyncIterator()
        _ = await iterator.next()
        reader.cancel()
        _ = await reader.result
        #expect(try await eventually(within: .seconds(150)) { closed.withLock { $0 } })
        await http.shutdown()
    }

    @Test func droppingTheBodyEarlyClosesTheConnection() async throws {
        let closed = Locked(false)
        let server = try TestHTTPServer { _, connection in
            connection.startChunked(contentType: "application/octet-stream")
            connection.writeChunk("part one")
            closed.withLock { $0 = connection.waitForPeerClose(seconds: 150) }
        }
        let http = Self.client()
        do {
            let response = try await http.execute(HTTPRequest(url: server.baseURL + "/bytes"))
            var iterator = response.body.makeAsyncIterator()
            _ = try await iterator.next()
        }
        #expect(try await eventually(within: .seconds(150)) { closed.withLock { $0 } })
        await http.shutdown()
    }

    @Test func sequentialRequestsReuseOneConnection() async throws {
        let server = try TestHTTPServer { _, connection in
            connection.respond(body: Array("ok".utf8))
        }
        let http = Self.client()
        for _ in 0..<5 {
            let response = try await http.execute(HTTPRequest(url: server.baseURL + "/ping"))
            #expect(try await response.body.collect(upTo: 100) == Array("ok".utf8))
        }
        #expect(server.connectionCount == 1)
        await http.shutdown()
    }

    @Test func concurrencyIsBoundedByTheConnectionLimit() async throws {
        let active = Locked((now: 0, peak: 0))
        let server = try TestHTTPServer { _, connection in
            active.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
            Thread.sleep(forTimeInterval: 0.05)
            active.withLock { $0.now -= 1 }
            connection.respond(body: Array("ok".utf8))
        }
        let http = Self.client(HTTPClientConfiguration(maxConnections: 2, maxConnectionsPerHost: 2))
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<10 {
                group.addTask { try await http.execute(HTTPRequest(url: server.baseURL + "/")).status }
            }
            for try await status in group { #expect(status == 200) }
        }
        #expect(active.withLock { $0.peak } <= 2)
        #expect(server.connectionCount <= 2)
        await http.shutdown()
    }

    @Test func slowReaderGetsEveryByteOfALargeBody() async throws {
        // 8 MiB in 64 KiB chunks: far more than the client buffers, so the transfer must pause and resume.
        let chunk = String(repeating: "abcdefgh", count: 8192)
        let server = try TestHTTPServer { _, connection in
            connection.startChunked(contentType: "application/octet-stream")
            for _ in 0..<128 { if !connection.writeChunk(chunk) { return } }
            connection.endChunks()
        }
        let http = Self.client(HTTPClientConfiguration(bufferedChunks: 4))
        let response = try await http.execute(HTTPRequest(url: server.baseURL + "/large"))
        var total = 0
        var reads = 0
        for try await part in response.body {
            total += part.count
            reads += 1
            if reads % 16 == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(total == 128 * chunk.utf8.count)
        await http.shutdown()
    }

    @Test func collectRefusesBodiesOverTheLimit() async throws {
        let server = try TestHTTPServer { _, connection in
            connection.respond(body: [UInt8](repeating: 65, count: 10_000))
        }
        let http = Self.client()
        let response = try await http.execute(HTTPRequest(url: server.baseURL + "/big"))
        let error = try await #require(throws: HTTPClientError.self) { try await response.body.collect(upTo: 1000) }
        #expect(error.code == .bodyTooLarge)
        await http.shutdown()
    }

    @Test func requestsAfterShutdownFail() async throws {
        let http = Self.client()
        await http.shutdown()
        let error = try await #require(throws: HTTPClientError.self) { try await http.execute(HTTPRequest(url: "http://127.0.0.1:1/")) }
        #expect(error.code == .shutdown)
    }
}

extension HTTPClientTests {
    /// Requests started while the client shuts down fail cleanly: every one ends, none wakes a
    /// loop whose handle was already freed (which crashed the process now and then).
    @Test func requestsRacingShutdownAllEndWithoutACrash() async throws {
        for _ in 0..<40 {
            let client = HTTPClient(logger: Logger(label: "race"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        _ = try? await client.execute(HTTPRequest(url: "http://127.0.0.1:9/", timeout: .seconds(2)))
                    }
                }
                group.addTask { await client.shutdown() }
                try await group.waitForAll()
            }
        }
    }
}
