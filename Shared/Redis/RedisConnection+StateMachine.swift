extension RedisConnection {
    /// Queues requests from any task and hands them, in order, to a single drainer at a time.
    /// Everything that arrives while a batch is on the wire goes into the next batch, which is
    /// what pipelines concurrent callers on one connection.
    struct StateMachine<Request> {
        enum EnqueueAction {
            /// No drainer is running: the caller starts one.
            case startDrain
            /// The running drainer will pick the request up.
            case none
            /// The connection is closed; fail the request.
            case fail(Request)
        }

        private var queue: [Request] = []
        private var draining = false
        private(set) var isClosed = false

        mutating func enqueue(_ request: Request) -> EnqueueAction {
            if isClosed { return .fail(request) }
            queue.append(request)
            if draining { return .none }
            draining = true
            return .startDrain
        }

        /// The drainer takes up to `limit` requests; an empty answer ends its run.
        mutating func nextBatch(limit: Int) -> [Request] {
            if queue.isEmpty {
                draining = false
                return []
            }
            let count = Swift.min(limit, queue.count)
            let batch = Array(queue.prefix(count))
            queue.removeFirst(count)
            return batch
        }

        var hasQueued: Bool { !queue.isEmpty }

        /// Stops accepting requests; returns those still queued so they can be failed.
        mutating func close() -> [Request] {
            isClosed = true
            defer { queue = [] }
            return queue
        }
    }
}

extension RedisConnection.StateMachine: Sendable where Request: Sendable {}
