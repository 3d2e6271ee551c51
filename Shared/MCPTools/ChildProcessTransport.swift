import Foundation
import Logging
import MCP

#if canImport(Glibc)
import Glibc
#endif

/// An MCP server as a child process: JSON-RPC messages as lines on its stdin and stdout.
///
/// The child gets only `PATH`, `HOME`, `LANG`, `LC_ALL` and `TMPDIR` of our environment plus
/// what its configuration names (no secrets of ours), its stderr goes to /dev/null, and every
/// descriptor above 2 is closed in it (a service's sockets must not live on in its tools). Its
/// stdout is read by a thread of its own, its stdin written from a serial queue: no blocking
/// call runs on the cooperative pool. A line longer than `maxLineBytes` ends the connection.
/// `disconnect` closes its stdin, sends its process group SIGTERM, and SIGKILL two seconds later.
public actor ChildProcessTransport: Transport {
    public nonisolated let logger: Logger
    private let command: [String]
    private let environment: [String: String]
    private let maxLineBytes: Int
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private let writes = DispatchQueue(label: "mcp-stdio-writes")
    private var child: ChildHandles?

    public init(command: [String], environment: [String: String], maxLineBytes: Int = 8 << 20, logger: Logger) {
        self.command = command
        self.environment = environment
        self.maxLineBytes = maxLineBytes
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self, throwing: (any Error).self)
    }

    public func connect() async throws {
        guard child == nil else { return }
        var inherited: [String: String] = [:]
        let ours = ProcessInfo.processInfo.environment
        for name in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"] { inherited[name] = ours[name] }
        let handles = try ChildHandles.spawn(command, environment: inherited.merging(environment) { $1 })
        child = handles
        let continuation = self.continuation
        let limit = maxLineBytes
        let thread = Thread {
            Self.readLines(from: handles.output, limit: limit, into: continuation)
            handles.terminate()
            close(handles.output)
        }
        thread.name = "mcp-stdio-read"
        thread.start()
    }

    public func disconnect() async {
        guard let child else { return }
        self.child = nil
        child.terminate()
        continuation.finish(throwing: MCPError.connectionClosed)
    }

    public func send(_ data: Data) async throws {
        guard let child else { throw MCPError.transportError(POSIXError(.ENOTCONN)) }
        var line = [UInt8](data)
        line.append(UInt8(ascii: "\n"))
        let bytes = line
        try await withCheckedThrowingContinuation { (resume: CheckedContinuation<Void, any Error>) in
            writes.async {
                resume.resume(with: Result { try child.write(bytes) })
            }
        }
    }

    public func receive() -> AsyncThrowingStream<Data, any Error> { stream }

    /// Blocking reads until end of file; each complete line is one message.
    private static func readLines(from descriptor: Int32, limit: Int, into continuation: AsyncThrowingStream<Data, any Error>.Continuation) {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            pending.append(contentsOf: chunk[0..<count])
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[start..<newline]
                start = newline + 1
                if line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) {
                    continuation.yield(Data(line))
                }
            }
            pending.removeFirst(start)
            if pending.count > limit {
                continuation.finish(throwing: MCPError.transportError(POSIXError(.EMSGSIZE)))
                return
            }
        }
        // A plain finish would have the SDK's client ask for the stream again, and again.
        continuation.finish(throwing: MCPError.connectionClosed)
    }
}

/// The child's pid and our ends of its pipes.
///
/// `@unchecked Sendable` is safe: `pid`, `input` and `output` are `let` constants; the one
/// mutable property, `closed`, is read and written only with `lock` held (in `write` and
/// `terminate`), so the writer queue, the reader thread and `disconnect` agree on it, and
/// `input` is closed only once, by the `terminate` call that flipped it.
final class ChildHandles: @unchecked Sendable {
    let pid: pid_t
    let input: Int32
    let output: Int32
    private let lock = NSLock()
    private var closed = false

    private init(pid: pid_t, input: Int32, output: Int32) {
        self.pid = pid
        self.input = input
        self.output = output
    }

    static func spawn(_ command: [String], environment: [String: String]) throws -> ChildHandles {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0 else { throw MCPError.transportError(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
        guard pipe(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            throw MCPError.transportError(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO))
        }
        // Our ends must not leak into other children started meanwhile.
        for descriptor in [toChild[1], fromChild[0]] { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        closeAbove2(&actions)
        let arguments = command.map { strdup($0) } + [nil]
        let variables = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in variables { free(pointer) }
        }
        // A group of its own: terminate reaches what it started too (a shell's children).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        // Our threads block signals and ServiceLifecycle ignores SIGTERM to watch for it: the
        // child starts with neither, or it would not stop when told.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, command[0], &actions, &attributes, arguments, variables)
        close(toChild[0])
        close(fromChild[1])
        guard status == 0 else {
            close(toChild[1]); close(fromChild[0])
            throw MCPError.transportError(POSIXError(POSIXErrorCode(rawValue: status) ?? .ENOENT))
        }
        return ChildHandles(pid: pid, input: toChild[1], output: fromChild[0])
    }

    /// glibc 2.34+ has `posix_spawn_file_actions_addclosefrom_np`; the Glibc module does not
    /// export it, so it is looked up.
    private static func closeAbove2(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }

    func write(_ bytes: [UInt8]) throws {
        lock.lock()
        let isClosed = closed
        lock.unlock()
        guard !isClosed else { throw MCPError.connectionClosed }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(input, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw MCPError.connectionClosed
            }
            offset += written
        }
    }

    /// Closes stdin, SIGTERM, SIGKILL after two seconds; reaps it on a thread. Once.
    func terminate() {
        lock.lock()
        let first = !closed
        closed = true
        lock.unlock()
        guard first else { return }
        close(input)
        kill(-pid, SIGTERM)
        let pid = self.pid
        let reaper = Thread {
            let deadline = Date().addingTimeInterval(2)
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date() > deadline {
                    kill(-pid, SIGKILL)
                    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                    break
                }
                usleep(20_000)
            }
            // What it left in its group goes with it.
            kill(-pid, SIGKILL)
        }
        reaper.name = "mcp-stdio-reap"
        reaper.start()
    }
}
