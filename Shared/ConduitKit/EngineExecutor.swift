import NIOPosix
import ServiceLifecycle

/// Threads of their own for CPU-heavy engine work (vector and keyword search, index inserts,
/// index restores), so one heavy request never holds a thread of the cooperative pool or an
/// event loop, where on two cores it would stall every other request of the process.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_ENGINE_THREADS` | 2 |
public final class EngineExecutor: Service, Sendable {
    private let pool: NIOThreadPool

    public init(threads: Int = 2) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    /// Runs `work` on an engine thread and returns its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(work)
    }

    /// Waits for shutdown, then lets the threads finish their current work and stop.
    public func run() async throws {
        try? await gracefulShutdown()
        try? await pool.shutdownGracefully()
    }
}
