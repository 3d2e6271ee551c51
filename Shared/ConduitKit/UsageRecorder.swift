import ConduitProtocol

/// Where a service's usage events go: `UsageOutbox` sends them to Kafka; an application test
/// keeps them in memory to read back.
public protocol UsageRecorder: Sendable {
    /// Queues `event`; never waits and never fails the request that made it.
    func record(_ event: UsageEvent)
}

