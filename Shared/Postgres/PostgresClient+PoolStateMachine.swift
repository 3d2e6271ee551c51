/// What a leaseholder is given: an open connection, or the right to open one.
enum LeaseGrant<Connection> {
    case connection(Connection)
    case create
}

extension PostgresClient {
    /// The pool's bookkeeping, free of I/O: every event returns the effects the caller performs
    /// after releasing the lock.
    struct PoolStateMachine<Connection, Waiter> {
        enum LeaseAction {
            case grant(LeaseGrant<Connection>)
            case wait
            case fail
        }

        struct ReleaseAction {
            var close: Connection?
            var grant: (waiter: Waiter, grant: LeaseGrant<Connection>)?
        }

        let maxConnections: Int
        private(set) var idle: [Connection] = []
        /// Connections open or being opened, leased ones included.
        private(set) var open = 0
        private var waiters: [(id: Int, waiter: Waiter)] = []
        private(set) var isShutdown = false

        init(maxConnections: Int) {
            self.maxConnections = maxConnections
        }

        var waiterCount: Int { waiters.count }

        mutating func lease(id: Int, waiter: Waiter) -> LeaseAction {
            if isShutdown { return .fail }
            if let connection = idle.popLast() { return .grant(.connection(connection)) }
            if open < maxConnections {
                open += 1
                return .grant(.create)
            }
            waiters.append((id, waiter))
            return .wait
        }

        /// A leaseholder is done. `reusable` is false when the connection broke or was left mid-transaction.
        mutating func release(_ connection: Connection, reusable: Bool) -> ReleaseAction {
            if isShutdown {
                open -= 1
                return ReleaseAction(close: connection)
            }
            if reusable {
                if !waiters.isEmpty {
                    let next = waiters.removeFirst()
                    return ReleaseAction(grant: (next.waiter, .connection(connection)))
                }
                idle.append(connection)
                return ReleaseAction()
            }
            // The slot is free again: hand it to a waiter as the right to open a fresh connection.
            if !waiters.isEmpty {
                let next = waiters.removeFirst()
                return ReleaseAction(close: connection, grant: (next.waiter, .create))
            }
            open -= 1
            return ReleaseAction(close: connection)
        }

        /// Opening a connection failed; its slot is free again.
        mutating func creationFailed() -> (waiter: Waiter, grant: LeaseGrant<Connection>)? {
            if !isShutdown, !waiters.isEmpty {
                let next = waiters.removeFirst()
                return (next.waiter, .create)
            }
            open -= 1
            return nil
        }

        /// A waiting task was cancelled; returns its waiter if it was still waiting.
        mutating func cancel(id: Int) -> Waiter? {
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index).waiter
        }

        mutating func shutdown() -> (close: [Connection], fail: [Waiter]) {
            isShutdown = true
            let closing = idle
            open -= idle.count
            idle = []
            let failing = waiters.map(\.waiter)
            waiters = []
            return (closing, failing)
        }
    }
}

extension PostgresClient.PoolStateMachine: Sendable where Connection: Sendable, Waiter: Sendable {}
extension LeaseGrant: Sendable where Connection: Sendable {}
