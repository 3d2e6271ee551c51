import ConduitProtocol
import Foundation
@testable import MetricsExporter
import Prometheus
import Testing
import TestSupport

/// The `llm_*` metrics from usage events, without a broker.
struct UsageMetricsTests {
    static func exposition(_ registry: PrometheusCollectorRegistry) -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    static func series(_ text: String) -> [String] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
    }

    static func event(model: String, tenant: String = "acme", key: String = "k", cost: Double = 0.002, status: String = "ok") -> UsageEvent {
        var event = UsageEvent(requestID: UUID().uuidString, tenant: tenant, kind: "chat", model: model, promptTokens: 100, completionTokens: 20,
                               status: status, timestamp: Date())
        event.keyID = key
        event.servedModel = model
        event.provider = "openai"
        event.costUSD = cost
        event.cachedTokens = 40
        event.latencyMilliseconds = 1200
        event.timeToFirstTokenMilliseconds = 300
        event.tier = "standard"
        event.selectionReason = "requested"
        event.cacheHit = false
        return event
    }

    @Test func countersAndHistogramsFollowTheEvents() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = UsageMetrics(registry: registry)
        for _ in 0..<3 { metrics.record(Self.event(model: "gpt-4o")) }
        metrics.record(Self.event(model: "gpt-4o", status: "upstream_error"))
        var hit = Self.event(model: "gpt-4o", cost: 0)
        hit.cacheHit = true
        hit.savedUSD = 0.002
        metrics.record(hit)
        var grounded = Self.event(model: "gpt-4o", cost: 0)
        grounded.citations = 2
        metrics.record(grounded)
        let text = Self.exposition(registry)
        #expect(text.contains(#"llm_requests_total{model="gpt-4o",provider="openai",status="ok"} 5"#))
        #expect(text.contains(#"llm_rag_answers_total{model="gpt-4o"} 1"#))
        #expect(text.contains(#"llm_rag_citations_total{model="gpt-4o"} 2"#))
        #expect(text.contains(#"llm_requests_total{model="gpt-4o",provider="openai",status="upstream_error"} 1"#))
        #expect(text.contains(#"llm_tokens_total{model="gpt-4o",kind="prompt"} 600"#))
        #expect(text.contains(#"llm_tokens_total{model="gpt-4o",kind="cached"} 240"#))
        #expect(text.contains(#"llm_cost_dollars_total{model="gpt-4o"} 0.008"#))
        #expect(text.contains(#"llm_cost_per_request_dollars_count{model="gpt-4o",tier="standard"} 6"#))
        #expect(text.contains(#"llm_model_selection_total{selected_model="gpt-4o",reason="requested"} 6"#))
        #expect(text.contains(#"llm_cache_misses_total{model="gpt-4o"} 5"#))
        #expect(text.contains(#"llm_request_duration_seconds_bucket{model="gpt-4o",le="2.5"} 6"#))
        #expect(text.contains(#"llm_time_to_first_token_seconds_bucket{model="gpt-4o",le="0.25"} 0"#))
        #expect(text.contains(#"llm_cache_hits_total{model="gpt-4o"} 1"#))
        #expect(text.contains(#"llm_cache_savings_dollars_total{model="gpt-4o"} 0.002"#))
        #expect(try await MetricsLint.problems(text) == "")
    }

    /// No tenant, key, user or request ever becomes a label; model names past the limit count
    /// as `other`. 10,000 distinct callers add no series.
    @Test func callersAddNoSeriesAndModelsAreBounded() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = UsageMetrics(registry: registry, maxLabelValues: 5)
        metrics.record(Self.event(model: "m0"))
        let before = Self.series(Self.exposition(registry)).count
        for index in 0..<10_000 {
            var event = Self.event(model: "m0", tenant: "tenant-\(index)", key: "key-\(index)")
            event.user = "user-\(index)"
            metrics.record(event)
        }
        let text = Self.exposition(registry)
        #expect(Self.series(text).count == before)
        #expect(!text.contains("tenant-") && !text.contains("key-") && !text.contains("user-"))
        for index in 0..<50 { metrics.record(Self.event(model: "model-\(index)")) }
        let bounded = Self.exposition(registry)
        #expect(metrics.models.count == 5)
        #expect(bounded.contains(#"llm_requests_total{model="other",provider="openai",status="ok"} 46"#))
        #expect(!bounded.contains("model-10"))
    }

    /// Spend by team is the one caller-side label, and it is bounded too; 0 turns it off.
    @Test func teamSpendIsBoundedAndCanBeOff() {
        let registry = PrometheusCollectorRegistry()
        let metrics = UsageMetrics(registry: registry, maxTeams: 3)
        for index in 0..<100 {
            var event = Self.event(model: "m0")
            event.team = "team-\(index)"
            metrics.record(event)
        }
        let text = Self.exposition(registry)
        #expect(Self.series(text).filter { $0.hasPrefix("llm_team_cost_dollars_total") }.count == 4)
        #expect(text.contains(#"llm_team_cost_dollars_total{team="other"} 0.19"#))
        let off = PrometheusCollectorRegistry()
        UsageMetrics(registry: off, maxTeams: 0).record(Self.event(model: "m0"))
        #expect(!Self.exposition(off).contains("llm_team_cost"))
    }
}
