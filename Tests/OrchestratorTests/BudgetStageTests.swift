import Budgets
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Prometheus
@testable import Orchestrator
import Testing
import TestSupport

/// The budget stage in the chat path, over in-memory budgets and counters (the Redis scripts are
/// tested in BudgetsTests, the whole path over real services in the integration tier). The fake
/// model `tiny` costs $0.001 per prompt token and $0.002 per completion token; its answers
/// report 9 + 2 tokens, $0.013.
@Suite(.timeLimit(.minutes(1)))
struct BudgetStageTests {
    typealias Harness = ChatAPITests.Harness

    static func budget(_ id: String, scope: BudgetScope = .tenant, model: String? = nil, limit: Double) -> Budget {
        Budget(id: id, tenant: "acme", name: id, scope: scope, model: model, period: .month, limitUSD: limit)
    }

    /// Budgets defined, their counters built from an empty ledger when the stage asks.
    static func harness(_ budgets: [Budget]) -> Harness {
        let harness = Harness()
        harness.budgets.defined.withLock { $0 = budgets }
        let spend = harness.spend
        harness.budgets.onBuild.withLock {
            $0 = { built in
                for budget in built {
                    spend.build(.init(budgetID: budget.id, window: budget.period.window(containing: Date(), in: .gmt)), spent: 0)
                }
            }
        }
        return harness
    }

    static func counter(_ budget: Budget) -> BudgetCounters.Counter {
        .init(budgetID: budget.id, window: budget.period.window(containing: Date(), in: .gmt))
    }

    static let tenMaxTokens = #"{"model":"tiny","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#
    /// "hi" counts (2 + 2) / 3 = 1 token, plus 8 for the message: 9 prompt tokens, 10 completion.
    static let tenMaxTokensCost = 9 * 0.001 + 10 * 0.002

    @Test func aRequestHoldsItsMaximumCostThenSettlesToWhatItCost() async throws {
        let month = Self.budget("monthly", limit: 1)
        let harness = Self.harness([month])
        try await harness.app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.tenMaxTokens)
            #expect(response.status == .ok)
        }
        // The counter did not exist: built first, then held.
        #expect(harness.budgets.built.withLock { $0 } == ["monthly"])
        let reservation = try #require(harness.spend.reservations.withLock { $0 }.first)
        #expect(abs(reservation.amount - Self.tenMaxTokensCost) < 1e-12)
        let event = try #require(harness.usage.recorded.last)
        #expect(reservation.id == event.eventID)
        // Settled after the response went out.
        #expect(try await harness.spend.settled(1))
        #expect(harness.spend.settlements.withLock { $0.map(\.cost) } == [event.costUSD ?? -1])
        #expect(abs(harness.spend.spent(Self.counter(month)) - 0.013) < 1e-12)
        #expect(harness.spend.held(Self.counter(month)) == 0)
    }

    @Test func aBudgetWithoutRoomRefusesWithTheEnvelopeAndTheModelIsNotCalled() async throws {
        let month = Self.budget("tight", limit: 0.02)
        let harness = Self.harness([month])
        try await harness.app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.tenMaxTokens)
            #expect(response.status == .tooManyRequests)
            let error = ChatAPITests.json(response)?["error"]
            #expect(error?["type"] == "budget_exceeded" && error?["code"] == "insufficient_quota")
            let message = error?["message"]?.stringValue ?? ""
            #expect(message.contains("'tight' (tight)") && message.contains("resets at") && message.contains("$0.02"), "\(message)")
            #expect(Int(response.headers[.retryAfter] ?? "") ?? 0 > 0)
        }
        #expect(harness.models.requests.isEmpty)
        #expect(harness.usage.recorded.map(\.status) == ["budget_exceeded"])
        #expect(harness.spend.held(Self.counter(month)) == 0)
    }

    @Test func everyBudgetThatAppliesMustAllowItAndTheRefusalNamesTheOneThatDidNot() async throws {
        let tenant = Self.budget("tenant", limit: 10)
        let ada = Self.budget("ada", scope: .init(user: "ada"), limit: 0.02)
        let other = Self.budget("other-model", model: "big", limit: 0)
        let harness = Self.harness([tenant, ada, other])
        try await harness.app().test(.router) { client in
            let refused = try await ChatAPITests.chat(client, #"{"model":"tiny","max_tokens":10,"user":"ada","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(refused.status == .tooManyRequests)
            #expect(ChatAPITests.json(refused)?["error"]?["message"]?.stringValue?.contains("'ada'") == true)
            // The tenant's budget was not charged by the refused request.
            #expect(harness.spend.held(Self.counter(tenant)) == 0 && harness.spend.spent(Self.counter(tenant)) == 0)

            // Bob's request: the tenant's budget only (ada's is another user's, the zero budget another model's).
            let bob = try await ChatAPITests.chat(client, #"{"model":"tiny","max_tokens":10,"user":"bob","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(bob.status == .ok)
        }
        #expect(harness.spend.reservations.withLock { $0.map { $0.counters.map(\.budgetID) } } == [["tenant"]])
        #expect(try await harness.spend.settled(1))
        #expect(abs(harness.spend.spent(Self.counter(tenant)) - 0.013) < 1e-12)
        #expect(harness.usage.recorded.map(\.user) == ["ada", "bob"])
    }

    @Test func aFailedCallOrAStreamSettlesWhatItCost() async throws {
        let month = Self.budget("monthly", limit: 1)
        let harness = Self.harness([month])
        try await harness.app().test(.router) { client in
            let failed = try await ChatAPITests.chat(client, #"{"model":"tiny","max_tokens":10,"messages":[{"role":"user","content":"fail"}]}"#)
            #expect(failed.status == .badGateway)
            let stream = try await ChatAPITests.chat(client, #"{"model":"tiny","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(stream.status == .ok)
            // Cut mid-stream: what the model sent is estimated and paid for.
            let cut = try await ChatAPITests.chat(client, #"{"model":"tiny","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"cut"}]}"#)
            #expect(cut.status == .ok)
        }
        let events = harness.usage.recorded
        #expect(events.count == 3)
        #expect(try await harness.spend.settled(3))
        let settled = Dictionary(uniqueKeysWithValues: harness.spend.settlements.withLock { $0 }.map { ($0.id, $0.cost) })
        #expect(events.map { settled[$0.eventID] } == [0, events[1].costUSD ?? -1, events[2].costUSD ?? -1])
        #expect(events[1].costUSD == 0.013 && events[2].usageEstimated == true && (events[2].costUSD ?? 0) > 0)
        #expect(harness.spend.held(Self.counter(month)) == 0)
    }

    @Test func budgetsThatCannotBeKnownRefuseTheRequest() async throws {
        let harness = Self.harness([Self.budget("monthly", limit: 1)])
        harness.budgets.unavailable.withLock { $0 = true }
        try await harness.app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.tenMaxTokens)
            #expect(response.status == .serviceUnavailable)
            #expect(ChatAPITests.json(response)?["error"]?["code"] == "budgets_unavailable")
        }
        #expect(harness.models.requests.isEmpty)
    }

    @Test func withoutALimitTheHoldCoversWhatTheContextWindowLeaves() async throws {
        let month = Self.budget("monthly", limit: 100)
        let harness = Self.harness([month])
        try await harness.app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, #"{"model":"tiny","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(response.status == .ok)
        }
        // 9 prompt tokens and the 4,087 the 4,096-token window leaves.
        let amount = try #require(harness.spend.reservations.withLock { $0 }.first?.amount)
        #expect(abs(amount - (9 * 0.001 + 4087 * 0.002)) < 1e-9)
    }

    @Test func settlesWaitAfterTheResponseUpToTheBacklogAndBeforeItPastThat() async throws {
        let backlog = SettleBacklog(limit: 1, registry: PrometheusCollectorRegistry())
        let release = AsyncStream<Void>.makeStream()
        let order = Locked<[String]>([])
        // The first waits in the background (the caller goes on at once) …
        await backlog.run {
            for await _ in release.stream { break }
            order.withLock { $0.append("background") }
        }
        #expect(backlog.count == 1)
        // … the second finds the backlog full and runs before the caller goes on.
        await backlog.run { order.withLock { $0.append("inline") } }
        #expect(order.withLock { $0 } == ["inline"])
        release.continuation.yield()
        #expect(try await eventually(within: .seconds(5)) { backlog.count == 0 })
        #expect(order.withLock { $0 } == ["inline", "background"])
    }
}
