import Budgets
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import Prometheus
import Providers

/// Budgets before the model call: the request's maximum cost (its prompt, counted generously,
/// and its completion limit at the expected deployment's prices) is reserved against every
/// budget that applies, in one atomic step, or the request is refused with a 429 naming the
/// budget and when it resets. The hold is settled to the real cost after the answer, and to
/// what was spent when the request ends otherwise (0 on a failure); a hold nobody settles (a
/// crashed orchestrator) expires after `holdTTL`. The settle runs after the response has gone
/// (`SettleBacklog`): a hold settled a moment late only keeps its room a moment longer.
///
/// It runs last, on the prompt as the model will see it (history and sources in): a cache hit,
/// which costs nothing, is not refused.
struct BudgetStage: ChatStage {
    let directory: any BudgetDirectory
    let counters: any SpendReservations
    var holdTTL: Duration = .seconds(900)
    let backlog: SettleBacklog
    var now: @Sendable () -> Date = { Date() }
    let logger: Logger

    /// The request's hold: its id (the usage event's) and the counters it holds against.
    struct Hold: Sendable {
        var id: String
        var counters: [BudgetCounters.Counter]
    }

    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
        let caller = try context.caller()
        let attributes = SpendAttributes(
            tenant: turn.tenant, keyID: caller.keyID, team: turn.billing.team, user: turn.billing.user, tags: turn.billing.tags ?? [], model: turn.request.model)
        let applicable = try await directory.budgets(tenant: turn.tenant, context: context).filter { $0.applies(to: attributes) }
        guard !applicable.isEmpty else { return nil }
        let date = now()
        let charges = applicable.map { budget in
            (counter: BudgetCounters.Counter(budgetID: budget.id, window: budget.period.window(containing: date, in: TimeZone(identifier: budget.timeZone) ?? .gmt)),
             limitUSD: budget.limitUSD)
        }
        let amount = Self.maximumCost(of: turn)
        let id = turn.billing.eventID
        var outcome = try await counters.reserve(id, amountUSD: amount, against: charges, ttl: holdTTL)
        if case .unbuilt(let indexes) = outcome {
            // A new period, or a Redis that lost the counters: built from the ledger first.
            do {
                try await directory.buildCounters(indexes.map { applicable[$0] }, context: context)
            } catch {
                logger.warning("budget counters could not be built", metadata: [LogKey.error: "\(error)"])
                throw APIError.budgetsUnavailable("their counters could not be built")
            }
            outcome = try await counters.reserve(id, amountUSD: amount, against: charges, ttl: holdTTL)
        }
        switch outcome {
        case .held:
            turn.budgetHold = Hold(id: id, counters: charges.map(\.counter))
            return nil
        case .refused(let index, let spent, let reserved):
            throw Self.refusal(applicable[index], window: charges[index].counter.window, spentUSD: spent, reservedUSD: reserved, amountUSD: amount)
        case .unbuilt:
            throw APIError.budgetsUnavailable("their counters could not be built")
        }
    }

    func finish(_ turn: ChatTurn, answer: ChatAnswer) async {
        await settle(turn, costUSD: answer.costUSD)
    }

    func abandon(_ turn: ChatTurn, costUSD: Double) async {
        await settle(turn, costUSD: costUSD)
    }

    private func settle(_ turn: ChatTurn, costUSD: Double) async {
        guard let hold = turn.budgetHold else { return }
        let counters = self.counters
        let logger = self.logger
        await backlog.run {
            do {
                try await counters.settle(hold.id, costUSD: costUSD, on: hold.counters)
            } catch {
                // The hold expires on its own; the reconciler raises the counters to the ledger.
                logger.warning("a budget hold could not be settled", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    /// The most the request can cost at the expected deployment's prices: prompt tokens estimated
    /// on the high side (one per three bytes, plus each message's template), and the completion's
    /// limit — the request's, else the deployment's default (sent upstream in its place) — or what
    /// the context window leaves, if less.
    static func maximumCost(of turn: ChatTurn) -> Double {
        guard let deployment = turn.primary else { return 0 }
        let prompt = TokenCounter.estimatePrompt(turn.body.messages)
        let completion = min(turn.body.completionTokenLimit ?? deployment.defaultMaxTokens, max(1, turn.window - prompt))
        let prices = deployment.prices
        return (Double(prompt) * prices.input + Double(completion) * max(prices.output, prices.reasoning ?? 0)) / 1_000_000 * Double(max(1, turn.body.n ?? 1))
    }

    static func refusal(_ budget: Budget, window: BudgetWindow, spentUSD: Double, reservedUSD: Double, amountUSD: Double) -> APIError {
        let resets = window.end.map { "; it resets at \($0.formatted(.iso8601))" } ?? "; it does not reset"
        var error = APIError(
            status: .tooManyRequests, type: .budgetExceeded,
            message: String(format: "Budget %@ has $%.6f of its $%.2f %@ limit left (%.6f spent, %.6f held by requests in flight); this request may cost up to $%.6f%@.",
                            budget.title, max(0, budget.limitUSD - spentUSD - reservedUSD), budget.limitUSD, budget.period.rawValue, spentUSD, reservedUSD, amountUSD, resets),
            code: "insufficient_quota")
        if let end = window.end {
            error.retryAfterSeconds = max(1, Int(end.timeIntervalSinceNow.rounded(.up)))
        }
        return error
    }
}

/// Settles that run after their response: at most `limit` at once (`conduit_budget_settles_pending`
/// shows how many); past it a request settles before its response goes out, so a slow Redis
/// slows answers instead of piling up work. Settles still pending when the process stops are
/// lost: their holds expire after the hold TTL, and the reconciler raises the counters to the
/// ledger.
final class SettleBacklog: Sendable {
    let limit: Int
    private let pending = NIOLockedValueBox(0)
    private let gauge: Gauge

    init(limit: Int, registry: PrometheusCollectorRegistry) {
        self.limit = limit
        gauge = registry.makeGauge(descriptor: .init(
            namespace: "conduit", subsystem: "budget", metricName: "settles_pending",
            helpText: "Budget holds whose settle runs after the response, not done yet (at most CONDUIT_BUDGET_SETTLE_BACKLOG)."))
    }

    var count: Int { pending.withLockedValue { $0 } }

    /// `work` in the background when there is room, else now.
    func run(_ work: @escaping @Sendable () async -> Void) async {
        let admitted = pending.withLockedValue { pending -> Int? in
            guard pending < limit else { return nil }
            pending += 1
            return pending
        }
        guard let depth = admitted else {
            await work()
            return
        }
        gauge.set(to: Double(depth))
        Task {
            await work()
            let depth = pending.withLockedValue { pending -> Int in
                pending -= 1
                return pending
            }
            gauge.set(to: Double(depth))
        }
    }
}
