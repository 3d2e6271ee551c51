/// When a deployment may be called: closed (normal), open (cooling down after repeated
/// failures, skipped), half-open (one probe allowed; its outcome closes or re-opens).
/// Time is passed in, so tests drive it without waiting.
public struct CircuitBreakerStateMachine: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case closed(consecutiveFailures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen(probing: Bool)
    }

    public enum Decision: Sendable, Hashable {
        case allow
        /// Skip this deployment; it reopens for a probe at `until`.
        case reject(until: ContinuousClock.Instant)
    }

    /// What a recorded outcome changed, for metrics and logs.
    public enum Transition: Sendable, Hashable {
        case none
        case opened
        case closed
    }

    public private(set) var state: State = .closed(consecutiveFailures: 0)
    public let failureThreshold: Int
    public let cooldown: Duration

    public init(failureThreshold: Int = 3, cooldown: Duration = .seconds(30)) {
        self.failureThreshold = max(1, failureThreshold)
        self.cooldown = cooldown
    }

    public mutating func request(now: ContinuousClock.Instant) -> Decision {
        switch state {
        case .closed:
            return .allow
        case .open(let until):
            guard now >= until else { return .reject(until: until) }
            state = .halfOpen(probing: true)
            return .allow
        case .halfOpen(let probing):
            // One probe at a time; others keep skipping until it answers.
            if probing { return .reject(until: now + cooldown) }
            state = .halfOpen(probing: true)
            return .allow
        }
    }

    public mutating func recordSuccess() -> Transition {
        let wasClosed = if case .closed = state { true } else { false }
        state = .closed(consecutiveFailures: 0)
        return wasClosed ? .none : .closed
    }

    public mutating func recordFailure(now: ContinuousClock.Instant) -> Transition {
        switch state {
        case .closed(let failures):
            if failures + 1 >= failureThreshold {
                state = .open(until: now + cooldown)
                return .opened
            }
            state = .closed(consecutiveFailures: failures + 1)
            return .none
        case .halfOpen:
            state = .open(until: now + cooldown)
            return .opened
        case .open:
            return .none
        }
    }

    /// A probe that ended without saying anything about the deployment (the caller left).
    public mutating func recordAbandoned() {
        if case .halfOpen = state { state = .halfOpen(probing: false) }
    }

    public var isOpen: Bool {
        if case .closed = state { return false }
        return true
    }
}
