/// Money as whole nanodollars (10⁻⁹ USD), the unit of the spend counters: a cheap model's
/// request costs a few hundred of them, and integers add up without drift.
enum Nanodollars {
    static let perUSD = 1_000_000_000.0

    /// For what is held: never less than the amount.
    static func up(_ usd: Double) -> Int64 { Int64((max(0, usd) * perUSD).rounded(.up)) }
    /// For a limit: never more than it.
    static func down(_ usd: Double) -> Int64 { Int64((max(0, usd) * perUSD).rounded(.down)) }
    static func rounded(_ usd: Double) -> Int64 { Int64((max(0, usd) * perUSD).rounded()) }
    static func usd(_ nanodollars: Int) -> Double { Double(nanodollars) / perUSD }
}
