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
