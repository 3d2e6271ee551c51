@testable import Embedder
import Testing

struct BatcherStateMachineTests {
    typealias Machine = EmbeddingBatcher.StateMachine<Int>
    let start = ContinuousClock.now

    @Test func waitsForCompanyUntilTheDeadline() {
        var machine = Machine(maxBatchTokens: 100, maxQueuedTokens: 1000, maxWait: .milliseconds(5))
        _ = machine.enqueue(1, tokens: 10, now: start)
        guard case .wait(let until) = machine.next(now: start) else { Issue.record("expected wait"); return }
        #expect(until == start + .milliseconds(5))
        guard case .run(let jobs) = machine.next(now: start + .milliseconds(5)) else { Issue.record("expected run"); return }
        #expect(jobs == [1])
        guard case .idle = machine.next(now: start + .seconds(1)) else { Issue.record("expected idle"); return }
    }

    @Test func aFullBatchRunsAtOnceAndTheRestWaits() {
        var machine = Machine(maxBatchTokens: 100, maxQueuedTokens: 1000, maxWait: .seconds(1))
        for job in 1...4 { _ = machine.enqueue(job, tokens: 40, now: start) }
        guard case .run(let first) = machine.next(now: start) else { Issue.record("expected run"); return }
        #expect(first == [1, 2])
        // What is left is not a full batch: it waits for company until the oldest job's deadline.
        guard case .wait = machine.next(now: start) else { Issue.record("expected wait"); return }
        guard case .run(let second) = machine.next(now: start + .seconds(1)) else { Issue.record("expected run"); return }
        #expect(second == [3, 4])
        #expect(machine.queuedTokens == 0)
    }

    @Test func anOversizedJobRunsAlone() {
        var machine = Machine(maxBatchTokens: 100, maxQueuedTokens: 1000, maxWait: .seconds(1))
        _ = machine.enqueue(1, tokens: 500, now: start)
        _ = machine.enqueue(2, tokens: 10, now: start)
        guard case .run(let jobs) = machine.next(now: start) else { Issue.record("expected run"); return }
        #expect(jobs == [1])
    }

    @Test func aFullQueueRejectsButAnEmptyOneTakesAnything() {
        var machine = Machine(maxBatchTokens: 100, maxQueuedTokens: 50, maxWait: .seconds(1))
        guard case .accepted = machine.enqueue(1, tokens: 80, now: start) else { Issue.record("expected accepted"); return }
        guard case .rejected(2) = machine.enqueue(2, tokens: 1, now: start) else { Issue.record("expected rejected"); return }
        #expect(machine.drainAll() == [1])
        guard case .accepted = machine.enqueue(3, tokens: 40, now: start) else { Issue.record("expected accepted"); return }
    }
}
