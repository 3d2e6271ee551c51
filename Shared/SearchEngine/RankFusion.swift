/// Combines ranked lists from several signals (vector, keyword) into one.
public enum RankFusion {
    /// One fused result with what each signal said about it.
    public struct Result<ID: Hashable & Comparable & Sendable>: Sendable, Equatable {
        public var id: ID
        public var score: Double
        /// Per signal: 1-based rank and raw score, absent if that signal did not return it.
        public var signals: [String: Signal]
    }

    public struct Signal: Sendable, Equatable {
        public var rank: Int
        public var score: Double
        public init(rank: Int, score: Double) {
            self.rank = rank
            self.score = score
        }
    }

    /// Reciprocal-rank fusion: Σ weight / (k + rank). `k` default 60 (the usual choice).
    public static func reciprocalRank<ID>(
        _ lists: [String: [(id: ID, score: Double)]],
        k: Double = 60,
        weights: [String: Double] = [:],
        limit: Int
    ) -> [Result<ID>] {
        var fused: [ID: Result<ID>] = [:]
        for (signal, list) in lists {
            let weight = weights[signal] ?? 1
            for (index, item) in list.enumerated() {
                var result = fused[item.id] ?? Result(id: item.id, score: 0, signals: [:])
                result.score += weight / (k + Double(index + 1))
                result.signals[signal] = Signal(rank: index + 1, score: item.score)
                fused[item.id] = result
            }
        }
        return ranked(fused, limit: limit)
    }

    /// Min-max score normalisation per signal, then a weighted sum: the alternative to RRF when
    /// score magnitudes carry meaning.
    public static func normalizedScores<ID>(
        _ lists: [String: [(id: ID, score: Double)]],
        weights: [String: Double] = [:],
        limit: Int
    ) -> [Result<ID>] {
        var fused: [ID: Result<ID>] = [:]
        for (signal, list) in lists {
            guard let high = list.map(\.score).max(), let low = list.map(\.score).min() else { continue }
            let weight = weights[signal] ?? 1
            for (index, item) in list.enumerated() {
                let normalized = high > low ? (item.score - low) / (high - low) : 1
                var result = fused[item.id] ?? Result(id: item.id, score: 0, signals: [:])
                result.score += weight * normalized
                result.signals[signal] = Signal(rank: index + 1, score: item.score)
                fused[item.id] = result
            }
        }
        return ranked(fused, limit: limit)
    }

    /// Best fused score first, ties by id so equal inputs always give the same order.
    private static func ranked<ID>(_ fused: [ID: Result<ID>], limit: Int) -> [Result<ID>] {
        Array(fused.values.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }.prefix(limit))
    }
}
