import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle

/// A pool of libpq connections. Statements block inside libpq, so each runs on the pool's own
/// threads (one per connection), never on an event loop or the cooperative pool.
public final class PostgresClient: Service, Sendable {
    private typealias Waiter = CheckedContinuation<LeaseGrant<PostgresConnection>, any Error>

    private struct State: Sendable {
        var pool: PoolStateMachine<PostgresConnection, Waiter>
        var nextWaiterID = 0
        var threadsStarted = false
    }

    public let configuration: PostgresConfiguration
    private let logger: Logger
    private let threads: NIOThreadPool
    private let state: NIOLockedValueBox<State>

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: configuration.maxConnections)
        self.state = NIOLockedValueBox(State(pool: .init(maxConnections: configuration.maxConnections)))
    }

    /// Keeps the pool until graceful shutdown, then closes idle connections and fails waiters.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
        try await threads.shutdownGracefully()
    }

    /// Closes the pool: idle connections now, leased ones as they come back.
    public func shutdown() {
        let (closing, failing) = state.withLockedValue { $0.pool.shutdown() }
        _ = closing  // freed by deinit as the array goes
        for waiter in failing { waiter.resume(throwing: PostgresError(.poolShutdown)) }
    }

    /// Runs one statement on any pooled connection.
    @discardableResult
    public func query(_ sql: String, _ binds: any PostgresEncodable...) async throws -> PostgresRows {
        try await query(sql, binds: binds)
    }

    @discardableResult
    public func query(_ sql: String, binds: [any PostgresEncodable]) async throws -> PostgresRows {
        try await withConnection { try await $0.query(sql, binds: binds) }
    }

    /// Leases one connection for several statements in order.
    public func withConnection<Result: Sendable>(
        _ body: (PostgresSession) async throws -> Result
    ) async throws -> Result {
        let connection = try await lease()
        let session = PostgresSession(connection: connection, threads: threads)
        do {
            let result = try await body(session)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs `body` inside BEGIN/COMMIT; any error rolls back and is rethrown.
    public func withTransaction<Result: Sendable>(
        _ body: (PostgresSession) async throws -> Result
    ) async throws -> Result {
        try await withConnection { session in
            try await session.query("BEGIN")
            do {
                let result = try await body(session)
                try await session.query("COMMIT")
                return result
            } catch {
                // If the rollback fails too, the connection is mid-transaction and will be discarded on release.
                _ = try? await session.query("ROLLBACK")
                throw error
            }
        }
    }

    private func lease() async throws -> PostgresConnection {
        let grant = try await acquire()
        switch grant {
        case .connection(let connection):
            do {
                let usable = try await threads.runIfActive { connection.isUsable }
                if !usable {
                    logger.debug("postgres connection found closed; reconnecting")
                    try await threads.runIfActive { try connection.connect() }
                }
                return connection
            } catch {
                release(connection)
                throw Self.mapThreadPoolError(error)
            }
        case .create:
            let connection = PostgresConnection(parameters: configuration.connectionParameters)
            do {
                try await threads.runIfActive { try connection.connect() }
                return connection
            } catch {
                if let (waiter, grant) = state.withLockedValue({ $0.pool.creationFailed() }) {
                    waiter.resume(returning: grant)
                }
                throw Self.mapThreadPoolError(error)
            }
        }
    }

    private func acquire() async throws -> LeaseGrant<PostgresConnection> {
        let id = state.withLockedValue { state -> Int in
            if !state.threadsStarted {
                state.threadsStarted = true
                threads.start()
            }
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                switch state.withLockedValue({ $0.pool.lease(id: id, waiter: continuation) }) {
                case .grant(let grant): continuation.resume(returning: grant)
                case .wait: break
                case .fail: continuation.resume(throwing: PostgresError(.poolShutdown))
                }
            }
        } onCancel: {
            state.withLockedValue { $0.pool.cancel(id: id) }?.resume(throwing: CancellationError())
        }
    }

    private func release(_ connection: PostgresConnection) {
        let action = state.withLockedValue { $0.pool.release(connection, reusable: connection.isIdleAndOpen) }
        if let (waiter, grant) = action.grant { waiter.resume(returning: grant) }
    }

    static func mapThreadPoolError(_ error: any Error) -> any Error {
        error is PostgresError || error is CancellationError ? error : PostgresError(.poolShutdown)
    }
}

/// A leased connection, valid inside `withConnection` / `withTransaction` only.
public struct PostgresSession: Sendable {
    let connection: PostgresConnection
    let threads: NIOThreadPool

    @discardableResult
    public func query(_ sql: String, _ binds: any PostgresEncodable...) async throws -> PostgresRows {
        try await query(sql, binds: binds)
    }

    @discardableResult
    public func query(_ sql: String, binds: [any PostgresEncodable]) async throws -> PostgresRows {
        let values = binds.map(\.postgresBind)
        do {
            return try await threads.runIfActive { try connection.execute(sql, values) }
        } catch {
            throw PostgresClient.mapThreadPoolError(error)
        }
    }

    /// Runs several statements without parameters in one round trip (schema scripts).
    public func execute(script: String) async throws {
        do {
            try await threads.runIfActive { try connection.executeScript(script) }
        } catch {
            throw PostgresClient.mapThreadPoolError(error)
        }
    }
}
