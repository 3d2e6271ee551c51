import ConduitKit
import Hummingbird
import Logging
import Prometheus

/// The anchor of `make bench-governance` — the same gateway with authentication, rate limits,
/// concurrency limits and audit off — and nothing else: with
/// `CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1` every request is the platform admin of
/// `CONDUIT_ADMIN_TENANT` without a key. The gateway refuses it unless it listens on loopback
/// only, says so in its log at start, and `gateway_ungoverned` is 1. (Whoever sets a gateway's
/// environment holds its admin and internal keys anyway; this opens nothing to the network.)
struct UngovernedMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let identity: CallerIdentity
    let keyring: InternalKeyring

    init?(configuration: ServiceConfiguration, registry: PrometheusCollectorRegistry) throws {
        guard configuration.environment.optionalString("CONDUIT_GATEWAY_UNSAFE_UNGOVERNED") == "1" else { return nil }
        guard ["127.0.0.1", "::1", "localhost"].contains(configuration.host) else {
            throw ConfigurationError(key: "CONDUIT_GATEWAY_UNSAFE_UNGOVERNED", expected: "unset (it is for benchmarks on loopback only; CONDUIT_GATEWAY_HOST is \(configuration.host))")
        }
        identity = CallerIdentity(
            tenant: configuration.environment.string("CONDUIT_ADMIN_TENANT", default: "default"), keyID: "ungoverned", roles: [Role.platformAdmin.rawValue])
        keyring = try configuration.requireInternalKeys()
        registry.makeGauge(descriptor: .init(namespace: "gateway", metricName: "ungoverned",
                                             helpText: "1: authentication, rate limits and audit are off (CONDUIT_GATEWAY_UNSAFE_UNGOVERNED, benchmarks only)."))
            .set(to: 1.0)
        Logger(label: "gateway").critical("CONDUIT_GATEWAY_UNSAFE_UNGOVERNED=1: no authentication, rate limits or audit (benchmarks only)")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.identity = identity
        context.identityToken = try keyring.sign(identity, requestID: context.requestID)
        return try await next(request, context)
    }
}
