extension RedisConnection {
    /// Queues requests from any task and hands them, in order, to a single drainer at a time.
    /// Everything that arrives while a batch is on the wire goes into the next batch, which is
    /// what pipelines concurrent callers on one connection. The queue holds at most `limit`
    /// requests; a request still queued can be withdrawn (its caller was cancelled), one on the
    /// wire cannot (its reply must still be read, in order).
    struct StateMachine<Request> {
        enum EnqueueAction {
            /// No drainer is running: the caller starts one.
            case startDrain
            /// The running drainer will pick the request up.
            case none
            /// The connection is closed; fail the request.
            case fail(Request)
            /// The queue is full; refuse the request.
            case refuse(Request)
        }

        private var queue: [(id: UInt64, request: Request)] = []
        private var draining = false
        private(set) var isClosed = false
        let limit: Int

        init(limit: Int = .max) {
            self.limit = max(1, limit)
        }

        var queuedCount: Int { queue.count }

        mutating func enqueue(_ request: Request, id: UInt64 = 0) -> EnqueueAction {
            if isClosed { return .fail(request) }
            if queue.count >= limit { return .refuse(request) }
            queue.append((id, request))
            if draining { return .none }
            draining = true
            return .startDrain
        }

        /// Takes back the queued request `id`; nil when the drainer has it already (or it is gone).
        mutating func withdraw(_ id: UInt64) -> Request? {
            guard let position = queue.firstIndex(where: { $0.id == id }) else { return nil }
            return queue.remove(at: position).request
        }

        /// The drainer takes up to `limit` requests; an empty answer ends its run.
        mutating func nextBatch(limit: Int) -> [Request] {
            if queue.isEmpty {
                draining = false
                return []
            }
            let count = Swift.min(limit, queue.count)
            let batch = queue.prefix(count).map(\.request)
            queue.removeFirst(count)
            return batch
        }

        var hasQueued: Bool { !queue.isEmpty }

        /// Stops accepting requests; returns those still queued so they can be failed.
        mutating func close() -> [Request] {
            isClosed = true
            defer { queue = [] }
            return queue.map(\.request)
        }
    }
}

extension RedisConnection.StateMachine: Sendable where Request: Sendable {}
