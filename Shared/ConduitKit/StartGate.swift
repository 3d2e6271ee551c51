import ServiceLifecycle
import Synchronization

/// Holds services back until something they depend on is ready (the retriever's consumers
/// until its indexes are loaded, so no event is applied to a collection the loader is about to
/// replace). Opens once; a service still waiting at shutdown or cancellation simply returns.
public final class StartGate: Sendable {
    private struct State {
        var open = false
        var next = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    public var isOpen: Bool { state.withLock { $0.open } }

    /// True once the gate opens; false if the task is cancelled or shutdown begins first.
    public func wait() async -> Bool {
        let id = state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        return await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow: Bool? = state.withLock { state in
                        if state.open { return true }
                        if Task.isCancelled { return false }
                        state.waiters[id] = continuation
                        return nil
                    }
                    if let resumeNow { continuation.resume(returning: resumeNow) }
                }
            } onCancel: {
                self.abandon(id)
            }
        } onGracefulShutdown: {
            self.abandon(id)
        }
    }

    private func abandon(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
    }
}

/// A service that starts only once `gate` opens.
public struct GatedService: Service {
    let gate: StartGate
    let service: any Service

    public init(_ service: any Service, after gate: StartGate) {
        self.service = service
        self.gate = gate
    }

    public func run() async throws {
        guard await gate.wait() else { return }
        try await service.run()
    }
}
