import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import Prometheus
import Testing
import TestSupport

/// `/openapi.json` is the contract: every public route the gateway serves is in it, and nothing
/// it lists is missing from the router.
@Suite(.timeLimit(.minutes(1)))
struct OpenAPITests {
    /// The router with every route mounted (the admin and audit stores are never called here).
    static func router() throws -> Router<ConduitRequestContext> {
        let postgres = PostgresClient(configuration: .init(port: 9), logger: Logger(label: "unused"))
        let harness = GatewayHarness()
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(TestIdentity.environment))
        return try buildRouter(
            configuration: configuration,
            dependencies: GatewayDependencies(
                keys: harness.keys, indexing: harness.indexing, services: harness.services, limiter: harness.limiter, audit: harness.audit,
                administration: PostgresAPIKeyStore(postgres: postgres), auditLog: AuditLog(postgres: postgres), directory: PostgresDirectory(postgres: postgres)),
            registry: PrometheusCollectorRegistry())
    }

    @Test func everyPublicRouteIsInTheDocumentAndEveryOperationIsRouted() throws {
        let all = Set(try Self.router().routes.map { "\($0.method.rawValue) \($0.path)" }.filter { $0.contains(" /v1/") || $0.hasSuffix(" /openapi.json") })
        // A catch-all (`/v1/prompts/**`: names with folders) serves the documented operations
        // under its prefix (`/v1/prompts/{name}`, `/v1/prompts/{name}/labels` …): OpenAPI has no
        // catch-all to list it as.
        let catchAlls = all.filter { $0.hasSuffix("/**") }.map { $0.dropLast(2) }
        let routed = all.subtracting(all.filter { $0.hasSuffix("/**") })
        // The router prints its parameters as OpenAPI does: `/v1/keys/{id}`.
        let documented = Set(OpenAPIDocument.operations.map { $0.method.uppercased() + " " + $0.path })
        let served = documented.filter { operation in routed.contains(operation) || catchAlls.contains { operation.hasPrefix($0) } }
        #expect(routed.subtracting(documented).isEmpty, "routed, not documented: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented, not routed: \(documented.subtracting(served).sorted())")
        #expect(catchAlls.allSatisfy { prefix in documented.contains { $0.hasPrefix(prefix) } }, "a catch-all with nothing documented under it")
        #expect(routed.count >= 27)
    }

    @Test func theDocumentIsServedWithoutAKey() async throws {
        let app = Application(router: try Self.router())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(response.status == .ok)
            let document = JSONValue.parse(Array(response.body.readableBytesView))
            #expect(document?["openapi"] == "3.1.0")
            #expect(document?["paths"]?["/v1/keys/{id}/rotate"]?["post"]?["requestBody"] != nil)
            #expect(document?["paths"]?["/v1/chat/completions"]?["post"]?["responses"]?["401"]?["content"] != nil)
            #expect(document?["paths"]?["/v1/budgets/{id}"]?["patch"]?["parameters"]?[0]?["name"] == "id")
            #expect(document?["components"]?["schemas"]?["Error"]?["required"]?[0] == "error")
        }
    }
}
