import Crypto

/// Which variant of an experiment serves a caller: a hash of the experiment's id and the
/// caller's id (user, else session, else the request) placed on the variants' weights. The same
/// id always gets the same variant, on any replica, after any restart, with nothing stored.
public struct ExperimentAssignment: Sendable, Hashable {
    public struct Variant: Sendable, Hashable, Codable {
        /// The variant's name in results and answers.
        public var name: String
        /// What it serves: a label or a version of the experiment's prompt.
        public var label: String?
        public var version: Int?
        public var weight: Double

        public init(name: String, label: String? = nil, version: Int? = nil, weight: Double) {
            self.name = name
            self.label = label
            self.version = version
            self.weight = weight
        }

        public var selector: PromptSelector { version.map(PromptSelector.version) ?? .label(label ?? "production") }
    }

    public let experiment: String
    public let variants: [Variant]

    public init(experiment: String, variants: [Variant]) {
        self.experiment = experiment
        self.variants = variants
    }

    /// The variant for `subject`; nil when no variant has weight.
    public func variant(for subject: String) -> Variant? {
        let total = variants.reduce(0) { $0 + max(0, $1.weight) }
        guard total > 0 else { return nil }
        let point = Self.unitInterval(experiment: experiment, subject: subject) * total
        var upTo = 0.0
        for variant in variants where variant.weight > 0 {
            upTo += variant.weight
            if point < upTo { return variant }
        }
        return variants.last { $0.weight > 0 }
    }

    /// A uniform number in [0, 1) from SHA-256 of `experiment` NUL `subject`: stable across
    /// processes and releases (Swift's own hashing is seeded per process).
    static func unitInterval(experiment: String, subject: String) -> Double {
        var hasher = SHA256()
        hasher.update(data: Array(experiment.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(subject.utf8))
        let bits = hasher.finalize().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Double(bits >> 11) / Double(UInt64(1) << 53)
    }
}
