import ConduitProtocol
import Prometheus

/// Budget alerts (`conduit.alerts`) as metrics: `llm_budget_alerts_total{kind}` and
/// `llm_budget_utilization_ratio{budget}`, the spent fraction the latest alert of each budget
/// reported (it moves when a threshold is crossed, not with every request). Budget ids are
/// bounded like every label (`CONDUIT_METRICS_MAX_LABEL_VALUES`; later ones share `other`).
struct AlertMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let budgets: LabelLimiter
    let kinds = LabelLimiter(limit: 8)

    init(registry: PrometheusCollectorRegistry, maxLabelValues: Int = 100) {
        self.registry = registry
        budgets = LabelLimiter(limit: maxLabelValues)
    }

    func record(_ event: AlertEvent) {
        registry.makeCounter(
            descriptor: .init(namespace: "llm", metricName: "budget_alerts", unitName: "total", helpText: "Budget alerts, by kind (threshold, exhausted)."),
            labels: [("kind", kinds.value(event.kind))]
        ).increment()
        guard event.spentFraction.isFinite, event.spentFraction >= 0 else { return }
        registry.makeGauge(
            descriptor: .init(namespace: "llm", metricName: "budget_utilization", unitName: "ratio",
                              helpText: "Spent fraction of each budget's limit, as its latest alert reported."),
            labels: [("budget", budgets.value(event.budgetID))]
        ).set(event.spentFraction)
    }
}
