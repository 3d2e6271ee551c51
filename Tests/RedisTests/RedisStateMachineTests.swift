@testable import Redis
import Testing

struct RedisStateMachineTests {
    typealias Machine = RedisConnection.StateMachine<Int>

    @Test func firstRequestStartsADrainLaterOnesJoinIt() {
        var machine = Machine()
        guard case .startDrain = machine.enqueue(1) else { Issue.record("expected startDrain"); return }
        guard case .none = machine.enqueue(2) else { Issue.record("expected none"); return }
        #expect(machine.nextBatch(limit: 10) == [1, 2])
        #expect(machine.nextBatch(limit: 10) == [])
        guard case .startDrain = machine.enqueue(3) else { Issue.record("drain ended; expected a new one"); return }
    }

    @Test func batchesRespectTheLimitInOrder() {
        var machine = Machine()
        for value in 1...5 { _ = machine.enqueue(value) }
        #expect(machine.nextBatch(limit: 2) == [1, 2])
        #expect(machine.nextBatch(limit: 2) == [3, 4])
        #expect(machine.nextBatch(limit: 2) == [5])
    }

    @Test func closeReturnsQueuedAndRefusesNew() {
        var machine = Machine()
        _ = machine.enqueue(1)
        _ = machine.enqueue(2)
        #expect(machine.close() == [1, 2])
        guard case .fail(3) = machine.enqueue(3) else { Issue.record("expected fail"); return }
    }
}

extension RedisStateMachineTests {
    @Test func aFullQueueRefusesAndAWithdrawnRequestIsNeverHandedOut() {
        var machine = Machine(limit: 2)
        _ = machine.enqueue(1, id: 1)
        _ = machine.enqueue(2, id: 2)
        guard case .refuse(3) = machine.enqueue(3, id: 3) else { Issue.record("expected refuse"); return }
        #expect(machine.withdraw(1) == 1)
        #expect(machine.withdraw(1) == nil)
        guard case .none = machine.enqueue(4, id: 4) else { Issue.record("expected none: a drain is running"); return }
        #expect(machine.nextBatch(limit: 10) == [2, 4])
        // Taken by the drainer: too late to withdraw.
        #expect(machine.withdraw(4) == nil)
    }
}
