import Foundation

/// A small HTTP/1.1 server on a loopback port with one blocking thread per connection, so
/// tests can script exactly what the client sees: chunked streams, stalls, counts of
/// connections, and whether the client closed its socket.
public final class TestHTTPServer: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: [UInt8]
    }

    public typealias Handler = @Sendable (Request, Connection) -> Void

    public let port: Int
    private let listener: Int32
    private let state = Locked(State())

    private struct State {
        var connections = 0
        var closedByPeer = 0
        var stopped = false
    }

    public init(handler: @escaping Handler) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw StackControlError(message: "test server could not listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let state = self.state
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                state.withLock { $0.connections += 1 }
                Thread.detachNewThread {
                    let connection = Connection(fd: client)
                    while let request = connection.readRequest() {
                        handler(request, connection)
                        if connection.isClosed { break }
                    }
                    if connection.peerClosed { state.withLock { $0.closedByPeer += 1 } }
                    connection.close()
                }
            }
        }
    }

    deinit { stop() }

    public func stop() {
        if state.withLock({ state in defer { state.stopped = true }; return state.stopped }) { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Foundation.close(listener)
    }

    /// TCP connections accepted so far.
    public var connectionCount: Int { state.withLock { $0.connections } }
    /// Connections the client closed (EOF seen while the server still had it open).
    public var closedByPeerCount: Int { state.withLock { $0.closedByPeer } }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// One accepted connection; writes block on the handler's own thread.
    public final class Connection: @unchecked Sendable {
        // `@unchecked`: used only by the single thread that serves this connection.
        let fd: Int32
        private var buffer: [UInt8] = []
        public private(set) var isClosed = false
        public private(set) var peerClosed = false

        init(fd: Int32) {
            self.fd = fd
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }

        func readRequest() -> Request? {
            while true {
                if let end = find([13, 10, 13, 10]) {
                    let head = String(decoding: buffer[..<end], as: UTF8.self)
                    buffer.removeFirst(end + 4)
                    var lines = head.components(separatedBy: "\r\n")
                    let requestLine = lines.removeFirst().split(separator: " ")
                    var headers: [String: String] = [:]
                    for line in lines {
                        guard let colon = line.firstIndex(of: ":") else { continue }
                        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                    let length = Int(headers["content-length"] ?? "0") ?? 0
                    while buffer.count < length {
                        guard fill() else { return nil }
                    }
                    let body = Array(buffer.prefix(length))
                    buffer.removeFirst(length)
                    return Request(
                        method: requestLine.first.map(String.init) ?? "",
                        path: requestLine.dropFirst().first.map(String.init) ?? "",
                        headers: headers,
                        body: body
                    )
                }
                guard fill() else { return nil }
            }
        }

        private func find(_ pattern: [UInt8]) -> Int? {
            guard buffer.count >= pattern.count else { return nil }
            for index in 0...(buffer.count - pattern.count) where Array(buffer[index..<index + pattern.count]) == pattern {
                return index
            }
            return nil
        }

        private func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 {
                peerClosed = true
                return false
            }
            buffer += chunk[..<count]
            return true
        }

        /// Writes bytes; false once the client has gone.
        @discardableResult
        public func write(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written <= 0 {
                    peerClosed = true
                    return false
                }
                offset += written
            }
            return true
        }

        @discardableResult
        public func write(_ text: String) -> Bool { write(Array(text.utf8)) }

        /// A complete response with Content-Length.
        public func respond(status: Int = 200, headers: [String: String] = [:], body: [UInt8]) {
            var head = "HTTP/1.1 \(status) X\r\nContent-Length: \(body.count)\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            write(head + "\r\n")
            write(body)
        }

        /// Starts a chunked response; send chunks with `writeChunk`, end with `endChunks`.
        public func startChunked(status: Int = 200, contentType: String) {
            write("HTTP/1.1 \(status) X\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n\r\n")
        }

        @discardableResult
        public func writeChunk(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            return write(String(bytes.count, radix: 16) + "\r\n") && write(bytes) && write("\r\n")
        }

        public func endChunks() { write("0\r\n\r\n") }

        /// Blocks until the client closes the connection or `seconds` pass; true if it closed.
        public func waitForPeerClose(seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 50) > 0 {
                    var byte: UInt8 = 0
                    if recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0 {
                        peerClosed = true
                        return true
                    }
                    _ = fill()
                }
            }
            return false
        }

        public func close() {
            if isClosed { return }
            isClosed = true
            Foundation.close(fd)
        }
    }
}

/// A tiny lock around a value, for test helpers.
public final class Locked<Value>: @unchecked Sendable {
    // `@unchecked`: every access to `value` goes through `lock`.
    private var value: Value
    private let lock = NSLock()
    public init(_ value: Value) { self.value = value }
    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
