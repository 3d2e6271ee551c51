import ConduitProtocol
import Prometheus

/// The platform's LLM metrics from usage events, under the names dashboards chart. Labels are
/// model, provider, status, tier and selection reason only, each bounded by a `LabelLimiter`
/// (`CONDUIT_METRICS_MAX_LABEL_VALUES` for models); never a tenant, key, user or request, so the
/// series stay few however many callers there are.
struct UsageMetrics: Sendable {
    static let costBuckets = [0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1, 10]
    static let secondsBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    let registry: PrometheusCollectorRegistry
    let models: LabelLimiter
    let providers: LabelLimiter
    let statuses: LabelLimiter
    let tiers = LabelLimiter(limit: 16)
    let reasons = LabelLimiter(limit: 16)

    /// Teams as label values of `llm_team_cost_dollars_total` (nil: that metric is off).
    let teams: LabelLimiter?

    init(registry: PrometheusCollectorRegistry, maxLabelValues: Int = 100, maxTeams: Int = 50) {
        self.registry = registry
        teams = maxTeams > 0 ? LabelLimiter(limit: maxTeams) : nil
        models = LabelLimiter(limit: maxLabelValues)
        providers = LabelLimiter(limit: 16)
        statuses = LabelLimiter(limit: 32)
    }

    func record(_ event: UsageEvent) {
        let model = models.value(event.servedModel ?? event.model)
        let provider = providers.value(event.provider)
        let status = statuses.value(event.status)
        counter("requests", "total", "Model calls, by the model that served them, its provider and the outcome.",
                [("model", model), ("provider", provider), ("status", status)]).increment()
        for (kind, count) in [("prompt", event.promptTokens), ("completion", event.completionTokens),
                              ("cached", event.cachedTokens ?? 0), ("reasoning", event.reasoningTokens ?? 0)] where count > 0 {
            counter("tokens", "total", "Tokens, by model and kind (prompt, completion, cached, reasoning).", [("model", model), ("kind", kind)])
                .increment(by: Int64(count))
        }
        if let cost = event.costUSD, cost.isFinite, cost >= 0 {
            counter("cost", "dollars_total", "Spend in USD, by model.", [("model", model)]).increment(by: cost)
            if let teams {
                counter("team_cost", "dollars_total", "Spend in USD, by the key's team (bounded by CONDUIT_METRICS_MAX_TEAMS; later teams count as other).",
                        [("team", teams.value(event.team))]).increment(by: cost)
            }
            histogram("cost_per_request", "dollars", "Cost of one model call in USD, by model and the serving deployment's tier.",
                      [("model", model), ("tier", tiers.value(event.tier))], Self.costBuckets).record(cost)
        }
        if let milliseconds = event.latencyMilliseconds, milliseconds >= 0 {
            histogram("request_duration", "seconds", "From a request's arrival to its last byte, by model.", [("model", model)], Self.secondsBuckets)
                .record(Double(milliseconds) / 1000)
        }
        if let milliseconds = event.timeToFirstTokenMilliseconds, milliseconds >= 0 {
            histogram("time_to_first_token", "seconds", "Streams: from a request's arrival to its first content, by model.", [("model", model)], Self.secondsBuckets)
                .record(Double(milliseconds) / 1000)
        }
        if let reason = event.selectionReason {
            counter("model_selection", "total", "Model calls by the model that served them and why it was chosen (requested, fallback, or a router's reason).",
                    [("selected_model", model), ("reason", reasons.value(reason))]).increment()
        }
        if event.kind == "chat", event.cacheHit == false {
            counter("cache_misses", "total", "Chat requests the semantic cache did not answer, by model.", [("model", model)]).increment()
        }
        if let citations = event.citations, citations >= 0 {
            counter("rag_answers", "total", "Answers grounded on retrieved documents, by model.", [("model", model)]).increment()
            counter("rag_citations", "total", "Sources cited by grounded answers, by model.", [("model", model)]).increment(by: Int64(citations))
        }
        if event.cacheHit == true {
            counter("cache_hits", "total", "Answers from the semantic cache, by model.", [("model", model)]).increment()
            if let saved = event.savedUSD, saved.isFinite, saved >= 0 {
                counter("cache_savings", "dollars_total", "What cache hits saved in USD, by model.", [("model", model)]).increment(by: saved)
            }
        }
    }

    private func counter(_ name: String, _ unit: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        registry.makeCounter(descriptor: .init(namespace: "llm", metricName: name, unitName: unit, helpText: help), labels: labels)
    }

    private func histogram(_ name: String, _ unit: String, _ help: String, _ labels: [(String, String)], _ buckets: [Double]) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: .init(namespace: "llm", metricName: name, unitName: unit, helpText: help), labels: labels, buckets: buckets)
    }
}
