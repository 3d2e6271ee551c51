import Foundation

extension EmbeddingBatcher {
    /// Which jobs run together, free of threads and clocks: a bounded queue of jobs, and batches
    /// cut by a token budget, started once full or once the oldest job has waited `maxWait`.
    struct StateMachine<Job> {
        struct Queued {
            let job: Job
            let tokens: Int
            let enqueued: ContinuousClock.Instant
        }

        enum EnqueueAction {
            case accepted
            /// The queue holds `maxQueuedTokens` already: answer 429.
            case rejected(Job)
        }

        enum NextAction {
            case run([Job])
            /// Not full yet: wait for more jobs until this instant at the latest.
            case wait(until: ContinuousClock.Instant)
            case idle
        }

        let maxBatchTokens: Int
        let maxQueuedTokens: Int
        let maxWait: Duration
        private(set) var queue: [Queued] = []
        private(set) var queuedTokens = 0

        init(maxBatchTokens: Int, maxQueuedTokens: Int, maxWait: Duration) {
            self.maxBatchTokens = maxBatchTokens
            self.maxQueuedTokens = maxQueuedTokens
            self.maxWait = maxWait
        }

        mutating func enqueue(_ job: Job, tokens: Int, now: ContinuousClock.Instant) -> EnqueueAction {
            // One job larger than the whole queue is still taken when the queue is empty.
            if !queue.isEmpty, queuedTokens + tokens > maxQueuedTokens { return .rejected(job) }
            queue.append(Queued(job: job, tokens: tokens, enqueued: now))
            queuedTokens += tokens
            return .accepted
        }

        mutating func next(now: ContinuousClock.Instant) -> NextAction {
            guard let oldest = queue.first else { return .idle }
            var count = 0
            var tokens = 0
            for queued in queue {
                if count > 0, tokens + queued.tokens > maxBatchTokens { break }
                tokens += queued.tokens
                count += 1
            }
            let full = count < queue.count || tokens >= maxBatchTokens
            let deadline = oldest.enqueued + maxWait
            guard full || now >= deadline else { return .wait(until: deadline) }
            let batch = queue.prefix(count).map(\.job)
            queue.removeFirst(count)
            queuedTokens -= tokens
            return .run(batch)
        }

        /// Everything still queued, for failing at shutdown.
        mutating func drainAll() -> [Job] {
            defer {
                queue = []
                queuedTokens = 0
            }
            return queue.map(\.job)
        }
    }
}
