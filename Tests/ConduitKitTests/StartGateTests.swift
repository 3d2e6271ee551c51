import ConduitKit
import Logging
import ServiceLifecycle
import Testing
import TestSupport

/// Services held back until a gate opens, and let go at shutdown if it never does.
@Suite(.timeLimit(.minutes(1)))
struct StartGateTests {
    struct Probe: Service {
        let started: Locked<Bool>
        func run() async throws {
            started.withLock { $0 = true }
            try? await gracefulShutdown()
        }
    }

    @Test func aGatedServiceStartsOnlyOnceTheGateOpens() async throws {
        let gate = StartGate()
        let started = Locked(false)
        let group = ServiceGroup(services: [GatedService(Probe(started: started), after: gate)], logger: Logger(label: "gate-test"))
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!started.withLock { $0 })
        gate.open()
        #expect(try await eventually { started.withLock { $0 } })
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func shutdownBeforeTheGateOpensEndsTheWait() async throws {
        let gate = StartGate()
        let started = Locked(false)
        let group = ServiceGroup(services: [GatedService(Probe(started: started), after: gate)], logger: Logger(label: "gate-test"))
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(100))
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(!started.withLock { $0 })
        #expect(!gate.isOpen)
    }
}
