import Budgets
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Logging
import Prometheus
import Providers
import Routing

/// Router models (`model: "auto"`): the classifier rates the last user message, and the
/// selector picks the model by that, the request's latency limit, the candidates' health and
/// how much of the caller's budgets is used. It runs first, so that every later stage (the
/// cache's key, the prompt's packing, the budget's hold) sees the chosen model; the caller's
/// request (and its usage event's `model`) keeps the router's name.
///
/// The response carries `conduit.routing` and `X-Conduit-Route: <model>; reason=…; complexity=…`;
/// `llm_model_selection_total{selected_model, reason}` counts the choices.
struct RoutingStage: ChatStage {
    let models: any ChatModels
    let tokenizer: any Tokenizer
    let directory: any BudgetDirectory
    let counters: any SpendReservations
    let registry: PrometheusCollectorRegistry
    var now: @Sendable () -> Date = { Date() }
    let logger: Logger
    private let classifier = ComplexityClassifier()

    init(models: any ChatModels, tokenizer: any Tokenizer, directory: any BudgetDirectory, counters: any SpendReservations,
         registry: PrometheusCollectorRegistry, logger: Logger) {
        self.models = models
        self.tokenizer = tokenizer
        self.directory = directory
        self.counters = counters
        self.registry = registry
        self.logger = logger
    }

    func check(_ turn: ChatTurn) throws {
        if let limit = turn.options?.routing?.maxLatencyMilliseconds, limit <= 0 {
            throw APIError.invalidRequest("conduit.routing.max_latency_ms must be a positive number of milliseconds", param: "conduit.routing.max_latency_ms")
        }
    }

    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
        guard let router = models.catalog.router(named: turn.request.model) else { return nil }
        let messages = turn.body.messages
        let question = messages.last { $0.role == "user" }?.content?.plainText ?? ""
        let request = ModelSelector.Request(
            complexity: classifier.classify(question), promptTokens: TokenCounter.estimatePrompt(messages),
            completionLimit: turn.body.completionTokenLimit, maxLatencyMilliseconds: turn.options?.routing?.maxLatencyMilliseconds,
            hasImages: messages.containsImages, budgetUsed: await budgetUsed(turn, context: context))
        // A key limited to some models routes among those only.
        var candidates = router.candidates
        if let allowed = try context.caller().models {
            candidates = candidates.filter(allowed.contains)
            guard !candidates.isEmpty else {
                throw APIError(status: .forbidden, type: .permission,
                               message: "This API key may use none of the models '\(router.name)' chooses from (\(router.candidates.joined(separator: ", "))).",
                               param: "model", code: "model_not_allowed")
            }
        }
        guard let choice = ModelSelector(router: router).choose(request, among: candidates.map(models.selectionCandidate)) else {
            throw APIError(
                status: .notFound, type: .invalidRequest,
                message: "The model '\(router.name)' has no model it can choose: none of \(router.candidates.joined(separator: ", ")) has a configured deployment.",
                param: "model", code: "model_not_found")
        }
        turn.body.model = choice.model
        turn.primary = choice.deployment
        turn.counter = TokenCounter(deployment: choice.deployment, tokenizer: tokenizer)
        turn.routing = choice.info
        turn.billing.selectionReason = choice.reason.rawValue
        turn.responseHeaders[HTTPField.Name("X-Conduit-Route")!] = "\(choice.model); reason=\(choice.reason.rawValue); complexity=\(choice.info.complexity)"
        registry.makeCounter(
            descriptor: .init(namespace: "conduit", subsystem: "router", metricName: "choices", unitName: "total",
                              helpText: "Models chosen by this replica's routers (model: auto), by the model chosen and the reason."),
            labels: [("selected_model", choice.model), ("reason", choice.reason.rawValue)]
        ).increment()
        return nil
    }

    /// The largest share of its limit that a budget applying to the request has used, spent and
    /// held; nil when none applies or the counters cannot be read (the budget stage decides).
    private func budgetUsed(_ turn: ChatTurn, context: ConduitRequestContext) async -> Double? {
        do {
            let caller = try context.caller()
            let attributes = SpendAttributes(
                tenant: turn.tenant, keyID: caller.keyID, team: turn.billing.team, user: turn.billing.user, tags: turn.billing.tags ?? [], model: turn.request.model)
            let applicable = try await directory.budgets(tenant: turn.tenant, context: context).filter { $0.applies(to: attributes) && $0.limitUSD > 0 }
            guard !applicable.isEmpty else { return nil }
            let date = now()
            var used = 0.0
            for budget in applicable {
                let counter = BudgetCounters.Counter(
                    budgetID: budget.id, window: budget.period.window(containing: date, in: TimeZone(identifier: budget.timeZone) ?? .gmt))
                guard let state = try await counters.state(of: counter) else { continue }
                used = max(used, (state.spentUSD + state.reservedUSD) / budget.limitUSD)
            }
            return used
        } catch {
            logger.debug("budgets not read for routing", metadata: [LogKey.error: "\(error)"])
            return nil
        }
    }
}
