@testable import Postgres
import Testing

/// The pool's bookkeeping without any connection.
struct PoolStateMachineTests {
    typealias Machine = PostgresClient.PoolStateMachine<String, Int>

    @Test func createsUpToTheLimitThenQueues() {
        var machine = Machine(maxConnections: 2)
        guard case .grant(.create) = machine.lease(id: 1, waiter: 1) else { Issue.record("expected create"); return }
        guard case .grant(.create) = machine.lease(id: 2, waiter: 2) else { Issue.record("expected create"); return }
        guard case .wait = machine.lease(id: 3, waiter: 3) else { Issue.record("expected wait"); return }
        #expect(machine.open == 2)
        #expect(machine.waiterCount == 1)
    }

    @Test func releaseHandsTheConnectionToTheOldestWaiter() {
        var machine = Machine(maxConnections: 1)
        _ = machine.lease(id: 1, waiter: 1)
        _ = machine.lease(id: 2, waiter: 2)
        _ = machine.lease(id: 3, waiter: 3)
        let action = machine.release("c1", reusable: true)
        #expect(action.close == nil)
        guard let grant = action.grant, case .connection("c1") = grant.grant else { Issue.record("expected hand-off"); return }
        #expect(grant.waiter == 2)
    }

    @Test func brokenConnectionIsClosedAndItsSlotGivenToAWaiter() {
        var machine = Machine(maxConnections: 1)
        _ = machine.lease(id: 1, waiter: 1)
        _ = machine.lease(id: 2, waiter: 2)
        let action = machine.release("c1", reusable: false)
        #expect(action.close == "c1")
        guard let grant = action.grant, case .create = grant.grant else { Issue.record("expected create for waiter"); return }
        #expect(machine.open == 1)
    }

    @Test func idleConnectionsAreReused() {
        var machine = Machine(maxConnections: 1)
        _ = machine.lease(id: 1, waiter: 1)
        _ = machine.release("c1", reusable: true)
        guard case .grant(.connection("c1")) = machine.lease(id: 2, waiter: 2) else { Issue.record("expected reuse"); return }
    }

    @Test func failedCreationFreesTheSlot() {
        var machine = Machine(maxConnections: 1)
        _ = machine.lease(id: 1, waiter: 1)
        #expect(machine.creationFailed() == nil)
        #expect(machine.open == 0)
        guard case .grant(.create) = machine.lease(id: 2, waiter: 2) else { Issue.record("expected create"); return }
    }

    @Test func cancelledWaiterIsRemovedOnce() {
        var machine = Machine(maxConnections: 1)
        _ = machine.lease(id: 1, waiter: 1)
        _ = machine.lease(id: 2, waiter: 20)
        #expect(machine.cancel(id: 2) == 20)
        #expect(machine.cancel(id: 2) == nil)
        #expect(machine.waiterCount == 0)
    }

    @Test func shutdownClosesIdleAndFailsWaitersAndRefusesLeases() {
        var machine = Machine(maxConnections: 2)
        _ = machine.lease(id: 1, waiter: 1)
        _ = machine.lease(id: 2, waiter: 2)
        _ = machine.release("c1", reusable: true)
        _ = machine.lease(id: 3, waiter: 3)  // takes c1
        _ = machine.lease(id: 4, waiter: 4)  // waits
        let (close, fail) = machine.shutdown()
        #expect(close.isEmpty)
        #expect(fail == [4])
        guard case .fail = machine.lease(id: 5, waiter: 5) else { Issue.record("expected fail"); return }
        #expect(machine.release("c1", reusable: true).close == "c1")
    }
}
