import Budgets
import ConduitProtocol
import Foundation
import Logging
import Redis
import Testing
import TestSupport

/// The counters' scripts against the test stack's Redis; every test uses budget ids of its own.
@Suite(.timeLimit(.minutes(3)))
struct BudgetCountersTests {
    let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 4), logger: Logger(label: "test"))
    var counters: BudgetCounters { BudgetCounters(redis: redis) }

    func counter(_ name: String) -> BudgetCounters.Counter {
        .init(budgetID: TestEnvironment.uniqueName(name), window: BudgetPeriod.month.window(containing: Date(), in: .gmt))
    }

    @Test func aCounterRefusesUntilItIsBuiltFromTheLedger() async throws {
        let month = counter("unbuilt")
        #expect(try await counters.reserve("r1", amountUSD: 0.01, against: [(month, 1)], ttl: .seconds(60)) == .unbuilt([0]))
        let built = try await counters.build(month, ledgerSpentUSD: 0.25)
        #expect(built.before == nil && built.after == 0.25)
        #expect(try await counters.reserve("r1", amountUSD: 0.01, against: [(month, 1)], ttl: .seconds(60)) == .held)
        #expect(try await counters.state(of: month) == .init(spentUSD: 0.25, reservedUSD: 0.01, built: true))
    }

    @Test func aReservationMustFitEveryBudgetOrNoneIsCharged() async throws {
        let wide = counter("wide"), narrow = counter("narrow")
        try await counters.build(wide, ledgerSpentUSD: 0)
        try await counters.build(narrow, ledgerSpentUSD: 0.95)
        let outcome = try await counters.reserve("r1", amountUSD: 0.1, against: [(wide, 10), (narrow, 1)], ttl: .seconds(60))
        #expect(outcome == .refused(index: 1, spentUSD: 0.95, reservedUSD: 0))
        // The refusal left the first counter untouched.
        #expect(try await counters.state(of: wide)?.reservedUSD == 0)
        #expect(try await counters.reserve("r2", amountUSD: 0.05, against: [(wide, 10), (narrow, 1)], ttl: .seconds(60)) == .held)
        #expect(try await counters.state(of: narrow)?.reservedUSD == 0.05)
    }

    @Test func settlingReplacesTheHoldWithTheCostAndReleasingWithNothing() async throws {
        let month = counter("settle")
        try await counters.build(month, ledgerSpentUSD: 0)
        #expect(try await counters.reserve("a", amountUSD: 0.4, against: [(month, 1)], ttl: .seconds(60)) == .held)
        #expect(try await counters.reserve("b", amountUSD: 0.4, against: [(month, 1)], ttl: .seconds(60)) == .held)
        // A third would pass 1.00 with the two holds, though nothing is spent yet.
        guard case .refused = try await counters.reserve("c", amountUSD: 0.4, against: [(month, 1)], ttl: .seconds(60)) else {
            Issue.record("reserved past the limit")
            return
        }
        try await counters.settle("a", costUSD: 0.000_000_123, on: [month])
        try await counters.settle("b", costUSD: 0, on: [month])
        #expect(try await counters.state(of: month) == .init(spentUSD: 0.000_000_123, reservedUSD: 0, built: true))
    }

    @Test func anExpiredReservationStopsHoldingRoom() async throws {
        let month = counter("expiry")
        try await counters.build(month, ledgerSpentUSD: 0)
        // Long enough that a loaded machine reaches the next call in time.
        #expect(try await counters.reserve("crashed", amountUSD: 0.9, against: [(month, 1)], ttl: .seconds(4)) == .held)
        guard case .refused = try await counters.reserve("next", amountUSD: 0.5, against: [(month, 1)], ttl: .seconds(60)) else {
            Issue.record("the hold did not count")
            return
        }
        try await Task.sleep(for: .milliseconds(4200))
        #expect(try await counters.reserve("next", amountUSD: 0.5, against: [(month, 1)], ttl: .seconds(60)) == .held)
        #expect(try await counters.state(of: month)?.reservedUSD == 0.5)
    }

    @Test func aBuildRaisesToTheLedgerButNeverLowers() async throws {
        let month = counter("raise")
        try await counters.build(month, ledgerSpentUSD: 0.2)
        try await counters.settle("x", costUSD: 0.3, on: [month])
        // The ledger has not seen the 0.3 yet: the counter keeps it.
        #expect(try await counters.build(month, ledgerSpentUSD: 0.2) == (before: 0.5, after: 0.5))
        // A settlement the counter lost: the ledger knows more.
        #expect(try await counters.build(month, ledgerSpentUSD: 0.7) == (before: 0.5, after: 0.7))
    }

    @Test func aLostCounterTakesNoSettlementUntilRebuilt() async throws {
        let month = counter("lost")
        try await counters.build(month, ledgerSpentUSD: 0)
        #expect(try await counters.reserve("r", amountUSD: 0.1, against: [(month, 1)], ttl: .seconds(60)) == .held)
        _ = try await redis.del(month.key)
        try await counters.settle("r", costUSD: 0.1, on: [month])
        #expect(try await counters.state(of: month) == nil)
        #expect(try await counters.reserve("r2", amountUSD: 0.1, against: [(month, 1)], ttl: .seconds(60)) == .unbuilt([0]))
    }

    @Test func concurrentReservationsNeverOvercommit() async throws {
        let month = counter("race")
        try await counters.build(month, ledgerSpentUSD: 0)
        let counters = self.counters
        let held = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask { try await counters.reserve("r\(index)", amountUSD: 0.02, against: [(month, 1)], ttl: .seconds(60)) == .held }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(held == 50)
        #expect(try await counters.state(of: month)?.reservedUSD == 1.0)
    }
}
