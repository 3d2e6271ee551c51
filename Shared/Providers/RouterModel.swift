/// A public model name that is not served anywhere itself but chooses one of the catalog's
/// models per request (`model: "auto"`): the cheapest candidate good enough for the request's
/// complexity, within its latency limit, healthy, one tier lower when its budget runs low.
public struct RouterModel: Sendable, Hashable {
    public var name: String
    /// The models it chooses from. Each is rated by its first configured deployment's `quality`,
    /// `latency_ms` and prices.
    public var candidates: [String]
    /// The least quality (0…1) a request of each complexity needs.
    public var minQuality: [Complexity: Double]
    /// When an applicable budget has used this share of its limit, a request is served as if it
    /// were one complexity lower. 1 turns stepping down off.
    public var stepDownAt: Double

    public init(name: String, candidates: [String], minQuality: [Complexity: Double] = RouterModel.defaultMinQuality, stepDownAt: Double = 0.8) {
        self.name = name
        self.candidates = candidates
        self.minQuality = minQuality
        self.stepDownAt = stepDownAt
    }

    public static let defaultMinQuality: [Complexity: Double] = [.simple: 0.5, .medium: 0.75, .complex: 0.85]

    /// The least quality a request of `complexity` needs.
    public func quality(for complexity: Complexity) -> Double {
        minQuality[complexity] ?? Self.defaultMinQuality[complexity] ?? 0
    }
}

/// How hard a request looks, by the classifier's reckoning.
public enum Complexity: String, Sendable, Hashable, CaseIterable, Comparable, Codable {
    case simple, medium, complex

    /// One step down; `simple` stays.
    public var lower: Complexity {
        switch self {
        case .simple, .medium: .simple
        case .complex: .medium
        }
    }

    public static func < (lhs: Complexity, rhs: Complexity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
