/// `conduit.routing` of a response to a router model (`model: "auto"`): the model chosen, the
/// candidates it was chosen from, and why. The header `X-Conduit-Route` says the same in short.
public struct RoutingInfo: Codable, Sendable, Hashable {
    /// The router the request named.
    public var router: String
    /// The model chosen.
    public var model: String
    /// `simple`, `medium` or `complex`: what the classifier made of the last messages.
    public var complexity: String
    /// The classifier's score (higher is harder).
    public var score: Double
    /// One of `complexity`, `budget`, `latency`, `health`, `best_available` (see the README).
    public var reason: String
    /// The least quality the request needed (after any step down for the budget).
    public var minQuality: Double
    /// The share of the most used applicable budget, when one applies.
    public var budgetUsed: Double?
    public var candidates: [Candidate]

    public struct Candidate: Codable, Sendable, Hashable {
        public var model: String
        public var quality: Double
        public var latencyMilliseconds: Int?
        /// What this request would cost there, at most (its prompt and expected answer).
        public var estimatedCostUSD: Double
        /// `chosen`, `eligible`, `below_quality`, `over_latency`, `circuit_open`, `no_images` or
        /// `unconfigured`.
        public var status: String

        public init(model: String, quality: Double, latencyMilliseconds: Int?, estimatedCostUSD: Double, status: String) {
            self.model = model
            self.quality = quality
            self.latencyMilliseconds = latencyMilliseconds
            self.estimatedCostUSD = estimatedCostUSD
            self.status = status
        }

        enum CodingKeys: String, CodingKey {
            case model, quality, status
            case latencyMilliseconds = "latency_ms"
            case estimatedCostUSD = "estimated_cost_usd"
        }
    }

    public init(router: String, model: String, complexity: String, score: Double, reason: String, minQuality: Double, budgetUsed: Double?, candidates: [Candidate]) {
        self.router = router
        self.model = model
        self.complexity = complexity
        self.score = score
        self.reason = reason
        self.minQuality = minQuality
        self.budgetUsed = budgetUsed
        self.candidates = candidates
    }

    enum CodingKeys: String, CodingKey {
        case router, model, complexity, score, reason, candidates
        case minQuality = "min_quality"
        case budgetUsed = "budget_used"
    }
}
