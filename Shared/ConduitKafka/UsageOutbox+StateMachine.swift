import ConduitKit
import ConduitProtocol

extension UsageOutbox {
    /// The outbox's queue: bounded, taken in batches, with one parked sender. Pure; the lock
    /// around it and every effect (resuming the sender, sending) live in `UsageOutbox`.
    struct StateMachine {
        private(set) var pending: [UsageEvent] = []
        private var sender: CheckedContinuation<Void, Never>?
        private(set) var draining = false
        /// The sender has finished: nothing queued now would ever be sent.
        private(set) var closed = false
        let capacity: Int

        init(capacity: Int) { self.capacity = capacity }

        enum EnqueueAction {
            /// Queued; wake the sender if it is parked.
            case queued(wake: CheckedContinuation<Void, Never>?)
            /// The queue is full: the event is given up on.
            case refused
            /// The sender has stopped (after shutdown's drain): the event is given up on.
            case closed
        }

        mutating func enqueue(_ event: UsageEvent) -> EnqueueAction {
            guard !closed else { return .closed }
            guard pending.count < capacity else { return .refused }
            pending.append(event)
            defer { sender = nil }
            return .queued(wake: sender)
        }

        /// Up to `limit` events, oldest first.
        mutating func take(_ limit: Int) -> [UsageEvent] {
            let batch = Array(pending.prefix(limit))
            pending.removeFirst(batch.count)
            return batch
        }

        /// Events the sender failed to send go back to the front, ahead of newer ones, as far
        /// as the capacity allows; returns how many did not fit.
        mutating func putBack(_ events: [UsageEvent]) -> Int {
            let room = max(0, capacity - pending.count)
            pending.insert(contentsOf: events.prefix(room), at: 0)
            return events.count - min(room, events.count)
        }

        enum ParkAction {
            /// Nothing to send: the sender waits to be woken.
            case park
            /// Events are waiting, or the outbox is draining: carry on at once.
            case resume(CheckedContinuation<Void, Never>)
        }

        mutating func park(_ continuation: CheckedContinuation<Void, Never>) -> ParkAction {
            if !pending.isEmpty || draining { return .resume(continuation) }
            sender = continuation
            return .park
        }

        /// The sender is done; later events are refused rather than queued for no one.
        mutating func close() { closed = true }

        /// Draining and nothing left: closes, in the same step, so no event slips in between.
        mutating func closeIfDrained() -> Bool {
            guard draining, pending.isEmpty else { return false }
            closed = true
            return true
        }

        /// Gives up on everything queued and closes; returns how many were given up.
        mutating func abandon() -> Int {
            defer {
                pending = []
                closed = true
            }
            return pending.count
        }

        /// Shutdown began: send what is queued, then stop.
        mutating func drain() -> CheckedContinuation<Void, Never>? {
            draining = true
            defer { sender = nil }
            return sender
        }
    }
}
