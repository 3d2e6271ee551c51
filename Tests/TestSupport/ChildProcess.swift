import Foundation

/// A child process started with posix_spawn and reaped with waitpid on a thread of its own.
/// (Foundation's `Process.waitUntilExit` can miss the exit of a child whose own children,
/// like a daemonized Postgres, live on.)
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exit = Locked<Int32?>(nil)

    /// Starts `executable` with `arguments`; output goes to `outputPath` (or /dev/null).
    public init(executable: String, arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment, outputPath: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let output = outputPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // Nothing else of the test process's: a child holding a copy of one of its sockets (a
        // pooled HTTP connection, say) keeps that connection open after the test closes it, so
        // the server never sees the hang-up the test is about.
        guard let closeFrom = Self.closeFrom, closeFrom(&actions, 3) == 0 else {
            throw StackControlError(message: "posix_spawn_file_actions_addclosefrom_np is missing (glibc 2.34 or later is needed)")
        }
        // The test runner's threads block some signals; a child must not inherit that mask, or
        // servers it starts ignore SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw StackControlError(message: "could not start \(executable): errno \(status)") }
        pid = child
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module does
    /// not declare.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// True once the process has exited (it may not be reaped yet).
    public var hasExited: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.contains(") Z ") || stat.contains(") X ")
    }

    /// Waits for the exit and returns the exit status (128 + signal number if killed).
    public func wait() async -> Int32 {
        if let code = exit.withLock({ $0 }) { return code }
        let pid = self.pid
        let code = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                let exited = status & 0x7F == 0
                continuation.resume(returning: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F))
            }
        }
        exit.withLock { $0 = code }
        return code
    }
}
