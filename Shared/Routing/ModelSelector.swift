import ConduitProtocol
import Providers

/// Chooses a router's model for one request: the cheapest candidate whose quality the request's
/// complexity needs, among those that can take it now (configured, circuit closed, within the
/// latency limit, reading images when the request has some). Near the limit of a budget the
/// request is served one complexity lower. Every choice has one reason, from a fixed set:
///
/// | reason | when |
/// |---|---|
/// | `complexity` | the cheapest candidate good enough for the complexity |
/// | `budget` | the same, one complexity lower, because a budget is nearly used up |
/// | `latency` | the better-priced choice was over `max_latency_ms` |
/// | `health` | the better-priced choice's circuit was open (or every candidate's was) |
/// | `best_available` | no candidate that can take the request is good enough: the best of them |
public struct ModelSelector: Sendable {
    public enum Reason: String, Sendable, CaseIterable {
        case complexity, budget, latency, health
        case bestAvailable = "best_available"
    }

    /// A candidate as the request finds it.
    public struct Candidate: Sendable {
        public var model: String
        /// The deployment it would be served by (the first configured one whose circuit is
        /// closed, else the first configured); nil when none is configured.
        public var deployment: Deployment?
        /// Whether a configured deployment has its circuit closed.
        public var healthy: Bool

        public init(model: String, deployment: Deployment?, healthy: Bool) {
            self.model = model
            self.deployment = deployment
            self.healthy = healthy
        }
    }

    /// What the request brings to the choice.
    public struct Request: Sendable {
        public var complexity: ComplexityClassifier.Verdict
        /// Prompt tokens, estimated.
        public var promptTokens: Int
        /// The caller's `max_tokens`, if any.
        public var completionLimit: Int?
        public var maxLatencyMilliseconds: Int?
        public var hasImages: Bool
        /// The largest share of its limit any applicable budget has used (spent and held).
        public var budgetUsed: Double?

        public init(complexity: ComplexityClassifier.Verdict, promptTokens: Int, completionLimit: Int? = nil, maxLatencyMilliseconds: Int? = nil,
                    hasImages: Bool = false, budgetUsed: Double? = nil) {
            self.complexity = complexity
            self.promptTokens = promptTokens
            self.completionLimit = completionLimit
            self.maxLatencyMilliseconds = maxLatencyMilliseconds
            self.hasImages = hasImages
            self.budgetUsed = budgetUsed
        }
    }

    public struct Choice: Sendable {
        public var model: String
        public var deployment: Deployment
        public var reason: Reason
        public var info: RoutingInfo
    }

    /// Tokens an answer of each complexity is expected to take, to compare candidates' prices.
    public static let expectedCompletionTokens: [Complexity: Int] = [.simple: 64, .medium: 384, .complex: 1024]

    public let router: RouterModel

    public init(router: RouterModel) {
        self.router = router
    }

    /// Nil when no candidate has a configured deployment.
    public func choose(_ request: Request, among candidates: [Candidate]) -> Choice? {
        let complexity = request.complexity.complexity
        var needed = complexity
        if let used = request.budgetUsed, used >= router.stepDownAt { needed = complexity.lower }
        let minQuality = router.quality(for: needed)
        let completion = min(request.completionLimit ?? Int.max, Self.expectedCompletionTokens[complexity] ?? 256)

        var rated: [Rated] = []
        var unconfigured: [String] = []
        for candidate in candidates {
            guard let deployment = candidate.deployment else {
                unconfigured.append(candidate.model)
                continue
            }
            let prices = deployment.prices
            var status = "eligible"
            if request.hasImages, !deployment.acceptsImages {
                status = "no_images"
            } else if !candidate.healthy {
                status = "circuit_open"
            } else if let limit = request.maxLatencyMilliseconds, let latency = deployment.latencyMilliseconds, latency > limit {
                status = "over_latency"
            }
            rated.append(Rated(
                model: candidate.model, deployment: deployment, quality: deployment.quality ?? 0,
                cost: (Double(request.promptTokens) * prices.input + Double(completion) * prices.output) / 1_000_000, status: status))
        }
        guard !rated.isEmpty else { return nil }
        var (chosen, reason) = Self.decide(rated, minQuality: minQuality)
        if needed != complexity, reason == .complexity, Self.decide(rated, minQuality: router.quality(for: complexity)).0.model != chosen.model {
            reason = .budget
        }
        var listed = rated.map { item in
            let status = item.model == chosen.model ? "chosen" : item.status == "eligible" && item.quality < minQuality ? "below_quality" : item.status
            return RoutingInfo.Candidate(
                model: item.model, quality: item.quality, latencyMilliseconds: item.deployment.latencyMilliseconds,
                estimatedCostUSD: (item.cost * 1e9).rounded() / 1e9, status: status)
        }
        listed += unconfigured.map { RoutingInfo.Candidate(model: $0, quality: 0, latencyMilliseconds: nil, estimatedCostUSD: 0, status: "unconfigured") }
        let info = RoutingInfo(
            router: router.name, model: chosen.model, complexity: request.complexity.complexity.rawValue, score: request.complexity.score,
            reason: reason.rawValue, minQuality: minQuality, budgetUsed: request.budgetUsed.map { ($0 * 10_000).rounded() / 10_000 }, candidates: listed)
        return Choice(model: chosen.model, deployment: chosen.deployment, reason: reason, info: info)
    }

    /// A candidate rated for one request. `status` is what keeps it from taking the request, if
    /// anything does besides its quality.
    private struct Rated {
        var model: String
        var deployment: Deployment
        var quality: Double
        var cost: Double
        var status: String

        var canTake: Bool { status == "eligible" }
    }

    /// The choice at `minQuality`, and its reason (`complexity` when nothing stood in the way).
    private static func decide(_ rated: [Rated], minQuality: Double) -> (Rated, Reason) {
        func cheapest(_ items: [Rated]) -> Rated? { items.min { ($0.cost, -$0.quality) < ($1.cost, -$1.quality) } }
        func best(_ items: [Rated]) -> Rated? { items.max { ($0.quality, -$0.cost) < ($1.quality, -$1.cost) } }
        // What it would be with every candidate healthy and fast enough; what stood in its way
        // is the reason for anything else.
        let ideal = cheapest(rated.filter { $0.quality >= minQuality && $0.status != "no_images" })
        let obstacle: Reason? = switch ideal?.status {
        case "over_latency": .latency
        case "circuit_open": .health
        default: nil
        }
        if let pick = cheapest(rated.filter { $0.canTake && $0.quality >= minQuality }) {
            return (pick, obstacle ?? .complexity)
        }
        if let pick = best(rated.filter(\.canTake)) {
            return (pick, obstacle ?? .bestAvailable)
        }
        if let pick = rated.filter({ $0.status == "over_latency" })
            .min(by: { ($0.deployment.latencyMilliseconds ?? 0, $0.cost) < ($1.deployment.latencyMilliseconds ?? 0, $1.cost) }) {
            // Nothing is fast enough: the fastest of those that can take the request.
            return (pick, .latency)
        }
        let open = rated.filter { $0.status == "circuit_open" }
        if let pick = cheapest(open.filter { $0.quality >= minQuality }) ?? best(open) {
            // Every circuit is open: the model router's own retries and fallbacks get their chance.
            return (pick, .health)
        }
        // Only candidates that read no images: the model router answers with its 400.
        return (best(rated)!, .bestAvailable)
    }
}
