import ConduitProtocol
import Logging
import NIOConcurrencyHelpers
import Prometheus

/// Sends a chat request along its route: each deployment of the requested model, then those of
/// its fallback models. A deployment is retried with backoff on 429, 5xx, timeouts and broken
/// connections, skipped while its circuit breaker is open, and left for the next one when its
/// retries run out. Everything here happens before the caller has sent a byte to its client;
/// once a stream has delivered its first chunk, the route is settled.
public final class ProviderRouter: Sendable {
    /// Where a request was served.
    public struct Served: Sendable, Hashable {
        public var model: String
        public var deployment: Deployment
        /// Attempts over all deployments, this one included.
        public var attempts: Int

        public init(model: String, deployment: Deployment, attempts: Int = 1) {
            self.model = model
            self.deployment = deployment
            self.attempts = attempts
        }
    }

    public let catalog: ModelCatalog
    public let client: ProviderClient
    public let policy: RetryPolicy
    private let breakers: NIOLockedValueBox<[String: CircuitBreakerStateMachine]>
    private let makeBreaker: @Sendable () -> CircuitBreakerStateMachine
    private let metrics: Metrics
    private let logger: Logger
    private let sleep: @Sendable (Duration) async throws -> Void

    public init(
        catalog: ModelCatalog, client: ProviderClient, policy: RetryPolicy = .init(),
        breakerThreshold: Int = 3, breakerCooldown: Duration = .seconds(30),
        registry: PrometheusCollectorRegistry, logger: Logger,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.catalog = catalog
        self.client = client
        self.policy = policy
        self.breakers = NIOLockedValueBox([:])
        self.makeBreaker = { CircuitBreakerStateMachine(failureThreshold: breakerThreshold, cooldown: breakerCooldown) }
        self.metrics = Metrics(registry: registry)
        self.logger = logger
        self.sleep = sleep
        for model in catalog.models {
            // Every deployment's series exist from the start (at 0), so rates and alerts over them
            // read "none yet" rather than "no data".
            for deployment in model.deployments {
                metrics.circuitOpen(deployment.id).set(to: 0.0)
                _ = metrics.retries(deployment.id)
                _ = metrics.fallbacks(deployment.id)
                _ = metrics.circuitOpened(deployment.id)
            }
        }
    }

    /// The models a caller can use now.
    public var availableModels: [CatalogModel] { catalog.availableModels(keys: client.keys) }

    public func complete(_ request: ChatCompletionRequest) async throws -> (ChatCompletion, Served) {
        try await route(request) { deployment, stamp in
            try await client.complete(request, deployment: deployment, stamp: stamp)
        }
    }

    /// Returns when a stream has produced its first chunk.
    public func stream(_ request: ChatCompletionRequest) async throws -> (ProviderStream, Served) {
        try await route(request) { deployment, stamp in
            try await client.stream(request, deployment: deployment, stamp: stamp)
        }
    }

    /// Where a request for `model` itself (not its fallbacks) would go now: its first configured
    /// deployment whose circuit is closed, else its first configured one (nil when none is), and
    /// whether any has its circuit closed. Routers rate their candidates by it.
    public func availability(of model: String) -> (deployment: Deployment?, healthy: Bool) {
        let configured = catalog.model(named: model)?.deployments.filter { client.keys.isConfigured($0) } ?? []
        let healthy = configured.first { !isCircuitOpen($0.id) }
        return (healthy ?? configured.first, healthy != nil)
    }

    /// Whether a deployment's breaker is open now (for tests and diagnostics).
    public func isCircuitOpen(_ deployment: String) -> Bool {
        breakers.withLockedValue { $0[deployment]?.isOpen ?? false }
    }

    private func route<T: Sendable>(_ request: ChatCompletionRequest, _ attempt: (Deployment, ResponseStamp) async throws -> T) async throws -> (T, Served) {
        guard catalog.model(named: request.model) != nil else { throw RoutingError.unknownModel(request.model) }
        var routes = catalog.route(for: request.model, keys: client.keys)
        guard !routes.isEmpty else { throw RoutingError.noConfiguredDeployment(request.model) }
        if request.messages.containsImages {
            routes = routes.filter(\.deployment.acceptsImages)
            guard !routes.isEmpty else { throw RoutingError.imagesNotAccepted(request.model, param: request.messages.firstImageParam ?? "messages") }
        }
        var attempts = 0
        var lastError: ProviderError?
        for (position, route) in routes.enumerated() {
            let deployment = route.deployment
            if position > 0 { metrics.fallbacks(deployment.id).increment() }
            var retry = 0
            while true {
                guard admit(deployment.id) else {
                    logger.debug("deployment skipped: circuit open", metadata: ["deployment": "\(deployment.id)"])
                    lastError = lastError ?? ProviderError(.serverError, message: "every deployment is cooling down after repeated failures", deployment: deployment.id)
                    break
                }
                attempts += 1
                do {
                    let result = try await attempt(deployment, .new(model: route.model))
                    record(deployment.id, outcome: .success)
                    metrics.requests(deployment.id, outcome: "ok").increment()
                    return (result, Served(model: route.model, deployment: deployment, attempts: attempts))
                } catch let error as ProviderError {
                    metrics.requests(deployment.id, outcome: error.code.description).increment()
                    guard error.code != .cancelled, !Task.isCancelled else {
                        record(deployment.id, outcome: .abandoned)
                        throw ProviderError(.cancelled, message: "the request was cancelled", deployment: deployment.id)
                    }
                    guard error.isDeploymentFailure else {
                        // The request itself is at fault; another deployment would refuse it too.
                        record(deployment.id, outcome: .abandoned)
                        throw error
                    }
                    record(deployment.id, outcome: .failure)
                    lastError = error
                    retry += 1
                    guard let delay = policy.delay(beforeRetry: retry, after: error) else { break }
                    logger.info("retrying provider call", metadata: [
                        "deployment": "\(deployment.id)", "error": "\(error.code)", "retry": "\(retry)", "delay_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)",
                    ])
                    metrics.retries(deployment.id).increment()
                    try await sleep(delay)
                }
            }
        }
        throw lastError ?? ProviderError(.serverError, message: "no deployment could serve the request")
    }

    private enum Outcome { case success, failure, abandoned }

    private func admit(_ deployment: String) -> Bool {
        let now = ContinuousClock.now
        return breakers.withLockedValue { breakers in
            var breaker = breakers[deployment] ?? makeBreaker()
            defer { breakers[deployment] = breaker }
            if case .allow = breaker.request(now: now) { return true }
            return false
        }
    }

    private func record(_ deployment: String, outcome: Outcome) {
        let now = ContinuousClock.now
        let transition = breakers.withLockedValue { breakers -> CircuitBreakerStateMachine.Transition in
            var breaker = breakers[deployment] ?? makeBreaker()
            defer { breakers[deployment] = breaker }
            switch outcome {
            case .success: return breaker.recordSuccess()
            case .failure: return breaker.recordFailure(now: now)
            case .abandoned: breaker.recordAbandoned(); return .none
            }
        }
        switch transition {
        case .opened:
            logger.warning("circuit opened: deployment cools down", metadata: ["deployment": "\(deployment)"])
            metrics.circuitOpen(deployment).set(to: 1.0)
            metrics.circuitOpened(deployment).increment()
        case .closed:
            logger.info("circuit closed: deployment answers again", metadata: ["deployment": "\(deployment)"])
            metrics.circuitOpen(deployment).set(to: 0.0)
        case .none:
            break
        }
    }

    private struct Metrics: Sendable {
        let registry: PrometheusCollectorRegistry

        private func descriptor(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "conduit", subsystem: "provider", metricName: name, unitName: unit, helpText: help)
        }

        func requests(_ deployment: String, outcome: String) -> Counter {
            registry.makeCounter(descriptor: descriptor("requests", unit: "total", help: "Provider attempts by deployment and outcome."),
                                 labels: [("deployment", deployment), ("outcome", outcome)])
        }
        func retries(_ deployment: String) -> Counter {
            registry.makeCounter(descriptor: descriptor("retries", unit: "total", help: "Attempts repeated after a retryable failure."), labels: [("deployment", deployment)])
        }
        func fallbacks(_ deployment: String) -> Counter {
            registry.makeCounter(descriptor: descriptor("fallbacks", unit: "total", help: "Requests moved on to this deployment after earlier ones failed."), labels: [("to_deployment", deployment)])
        }
        func circuitOpen(_ deployment: String) -> Gauge {
            registry.makeGauge(descriptor: descriptor("circuit_open", help: "1 while the deployment's circuit breaker keeps it out of rotation."), labels: [("deployment", deployment)])
        }
        func circuitOpened(_ deployment: String) -> Counter {
            registry.makeCounter(descriptor: descriptor("circuit_opened", unit: "total", help: "Times the deployment's circuit breaker opened."), labels: [("deployment", deployment)])
        }
    }
}

/// A request the catalog cannot route.
public enum RoutingError: Error, Sendable, Equatable {
    /// No model by this name.
    case unknownModel(String)
    /// The model exists, but none of its deployments has its API key configured.
    case noConfiguredDeployment(String)
    /// The request has image parts and no deployment of the model (or its fallbacks) reads them.
    case imagesNotAccepted(String, param: String)
}

extension [ChatMessage] {
    /// Whether any message has an image part.
    public var containsImages: Bool {
        contains { message in
            guard case .parts(let parts) = message.content else { return false }
            return parts.contains { if case .imageURL = $0 { true } else { false } }
        }
    }

    /// `messages[i].content[j]` of the first image part.
    var firstImageParam: String? {
        for (index, message) in enumerated() {
            guard case .parts(let parts) = message.content else { continue }
            if let part = parts.firstIndex(where: { if case .imageURL = $0 { true } else { false } }) {
                return "messages[\(index)].content[\(part)]"
            }
        }
        return nil
    }
}
