import Synchronization

/// Keeps a label's values few: the first `limit` distinct values pass, every later one becomes
/// `other`. Label values come from events anyone who can write to the topic chooses, so without
/// it one bad producer could grow the exporter's series without bound.
final class LabelLimiter: Sendable {
    static let other = "other"
    let limit: Int
    private let seen = Mutex<Set<String>>([])

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    func value(_ raw: String?) -> String {
        let value = String((raw ?? "").prefix(64))
        guard !value.isEmpty else { return "none" }
        return seen.withLock { seen in
            if seen.contains(value) { return value }
            guard seen.count < limit else { return Self.other }
            seen.insert(value)
            return value
        }
    }

    var count: Int { seen.withLock { $0.count } }
}
