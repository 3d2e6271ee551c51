/// Simulated experiments on the statistics the registry reports, for the tests and
/// `bench-prompts-stats`: trials one at a time, the decision looked at after every one.
public enum ExperimentSimulation {
    /// SplitMix64: small, seeded, the same numbers on every run and platform.
    public struct SeededGenerator: RandomNumberGenerator, Sendable {
        var state: UInt64

        public init(seed: UInt64) { state = seed }

        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// The trial at which a binary experiment with these success rates was first declared
    /// different (`ExperimentStatistics.compare(...).significant`), or nil within `trials`.
    public static func decided(control: Double, treatment: Double, trials: Int, using generator: inout SeededGenerator) -> Int? {
        var successes = (0, 0)
        for trial in 1...trials {
            if Double.random(in: 0..<1, using: &generator) < control { successes.0 += 1 }
            if Double.random(in: 0..<1, using: &generator) < treatment { successes.1 += 1 }
            let comparison = ExperimentStatistics.compare(
                control: OutcomeSummary(successes: successes.0, of: trial), treatment: OutcomeSummary(successes: successes.1, of: trial), binary: true)
            if comparison.significant { return trial }
        }
        return nil
    }

    /// The share of `experiments` simulated experiments decided within `trials` per variant.
    public static func decidedShare(control: Double, treatment: Double, trials: Int, experiments: Int, seed: UInt64) -> Double {
        var generator = SeededGenerator(seed: seed)
        let decided = (0..<experiments).filter { _ in Self.decided(control: control, treatment: treatment, trials: trials, using: &generator) != nil }.count
        return Double(decided) / Double(max(1, experiments))
    }
}
