import ConduitProtocol

/// Where usage events are kept, exactly once each: `PostgresUsageLedger`.
protocol UsageLedger: Sendable {
    /// Records `event` with the daily rollup in one step; false when its event id is already
    /// recorded (a replay), which changes nothing.
    func record(_ event: UsageEvent) async throws -> Bool
}
