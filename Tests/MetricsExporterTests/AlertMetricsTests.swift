import ConduitProtocol
import Foundation
@testable import MetricsExporter
import Prometheus
import Testing
import TestSupport

/// Budget alerts as metrics, without a broker.
struct AlertMetricsTests {
    static func alert(_ budget: String, kind: String = "threshold", fraction: Double) -> AlertEvent {
        AlertEvent(budgetID: budget, tenant: "acme", kind: kind, spentFraction: fraction, spentUSD: fraction * 10, limitUSD: 10, period: "month", timestamp: Date())
    }

    @Test func alertsCountByKindAndEachBudgetShowsItsLatestFraction() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = AlertMetrics(registry: registry, maxLabelValues: 2)
        metrics.record(Self.alert("bud_a", fraction: 0.5))
        metrics.record(Self.alert("bud_a", fraction: 0.8))
        metrics.record(Self.alert("bud_b", kind: "exhausted", fraction: 1.02))
        // A third budget is past the label bound: it shares `other`.
        metrics.record(Self.alert("bud_c", fraction: 0.5))
        metrics.record(Self.alert("bud_d", fraction: .nan))
        let text = UsageMetricsTests.exposition(registry)
        #expect(text.contains(#"llm_budget_alerts_total{kind="threshold"} 4"#))
        #expect(text.contains(#"llm_budget_alerts_total{kind="exhausted"} 1"#))
        #expect(text.contains(#"llm_budget_utilization_ratio{budget="bud_a"} 0.8"#))
        #expect(text.contains(#"llm_budget_utilization_ratio{budget="bud_b"} 1.02"#))
        #expect(text.contains(#"llm_budget_utilization_ratio{budget="other"} 0.5"#))
        #expect(UsageMetricsTests.series(text).filter { $0.hasPrefix("llm_budget_utilization_ratio") }.count == 3)
        #expect(try await MetricsLint.problems(text) == "")
    }
}
