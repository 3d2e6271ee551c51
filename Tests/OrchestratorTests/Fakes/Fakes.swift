import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
@testable import Orchestrator
import Prometheus
import Providers
import SemanticCache
import TestSupport

/// In-process stand-ins for what the orchestrator's routes stand on (the application tier:
/// no server is started). The real ones are tested against real servers in
/// OrchestratorStoreTests and the integration tier.
enum Fakes {
    /// A catalog with one model, `tiny`, priced so that costs are easy to check.
    static let catalog = try! ModelCatalog(yaml: """
        models:
          - name: tiny
            owned_by: tests
            deployments:
              - id: tiny-local
                provider: openai
                model: tiny
                base_url: http://127.0.0.1:9/v1
                context_window: 4096
                price_per_million: {input: 1000, output: 2000}
          - name: quick
            deployments:
              - {id: quick-local, provider: openai, model: quick, base_url: "http://127.0.0.1:9/v1", context_window: 4096,
                 price_per_million: {input: 1, output: 2}, quality: 0.6, latency_ms: 100}
          - name: deep
            deployments:
              - {id: deep-local, provider: openai, model: deep, base_url: "http://127.0.0.1:9/v1", context_window: 4096,
                 price_per_million: {input: 10, output: 40}, quality: 0.9, latency_ms: 800}
        routers:
          - name: auto
            models: [quick, deep]
            min_quality: {simple: 0.5, medium: 0.5, complex: 0.85}
        """)

    /// Routes built over `dependencies`, with the cache off unless `cache` is set.
    static func router(_ dependencies: OrchestratorDependencies, environment: [String: String] = [:]) throws -> Router<ConduitRequestContext> {
        var values = TestIdentity.environment
        values["CONDUIT_CACHE_ENABLED"] = "false"
        values.merge(environment) { $1 }
        let configuration = try ServiceConfiguration(service: .orchestrator, environment: ConduitEnvironment(values))
        return try buildRouter(configuration: configuration, dependencies: dependencies, registry: PrometheusCollectorRegistry(), logger: Logger(label: "orchestrator-app-test"))
    }
}
