import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import Hummingbird
import Prometheus
import TestSupport

/// The gateway's routes over in-process fakes, with one admin key installed.
struct GatewayHarness {
    var keys = InMemoryAPIKeyStore()
    var indexing = RecordingIndexingQueue()
    var services = FakeServices()
    var limiter: any RateLimiter = CountingRateLimiter()
    var audit = RecordingAudit()
    var jwt: JWTVerifier?
    var environment: [String: String] = [:]
    let key = APIKeyAuthenticator.generateKey()
    let tenant = "acme"
    let registry = PrometheusCollectorRegistry()

    /// The gateway's routes over the fakes, with `key` installed as the tenant's admin key.
    func app() async throws -> some ApplicationProtocol {
        try await APIKeyAuthenticator(store: keys).installAdminKey(key, tenant: tenant)
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(TestIdentity.environment.merging(environment) { $1 }))
        let router = try buildRouter(
            configuration: configuration, dependencies: GatewayDependencies(keys: keys, indexing: indexing, services: services, limiter: limiter, audit: audit, jwt: jwt),
            registry: registry)
        return Application(router: router)
    }
}

extension GatewayHarness {
    /// A developer key `id` of tenant `tenant` held to the limits `configure` sets.
    func installKey(_ id: String, tenant: String = "acme", _ configure: (inout CallerLimits) -> Void) -> String {
        let key = APIKeyAuthenticator.generateKey()
        var identity = CallerIdentity(tenant: tenant, keyID: id, roles: ["developer"])
        configure(&identity.limits)
        keys.install(hash: APIKeyAuthenticator.hash(key), identity: identity)
        return key
    }
}
