@testable import Orchestrator
import Prometheus
import Testing
import TestSupport

/// The orchestrator's cache counters pass `promtool check metrics` before and after lookups
/// (they appeared without HELP text after the first lookup, which promtool refuses).
struct CacheMetricsTests {
    @Test func cacheCountersHaveHelpAndTypeFromTheStart() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = AnswerCache.Metrics(registry: registry)
        func exposition() -> String {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
        #expect(exposition().contains("# HELP semantic_cache_misses_total"))
        metrics.hit(similarity: 0.97)
        metrics.hit(similarity: 0.42)
        metrics.miss()
        let text = exposition()
        #expect(text.contains("# HELP semantic_cache_hits_total"))
        #expect(text.contains(#"semantic_cache_hits_total{similarity_range="0.97-0.98"} 1"#))
        #expect(try await MetricsLint.problems(text) == "")
    }
}
