import CHiredis
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// One Redis connection driven by its own thread with hiredis' blocking API. Callers on any task
/// enqueue; the thread writes everything queued in one go and then reads the replies in order.
/// The queue is bounded (`RedisConfiguration.maxQueued`: beyond it a command fails at once with
/// `overloaded`), and a caller cancelled while its command waits gets `CancellationError` at
/// once, the command withdrawn unsent.
final class RedisConnection: Sendable {
    struct Request: Sendable {
        let commands: [RedisCommand]
        let continuation: CheckedContinuation<[RedisValue], any Error>
    }

    private let configuration: RedisConfiguration
    private let logger: Logger
    private let thread: NIOThreadPool
    private let state: NIOLockedValueBox<StateMachine<Request>>
    private let nextID = NIOLockedValueBox<UInt64>(0)
    private let threadStarted = NIOLockedValueBox(false)
    private let metrics: RedisMetrics?
    /// Touched only by the drainer on `thread`.
    private let context: ContextBox

    init(configuration: RedisConfiguration, metrics: RedisMetrics?, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.state = NIOLockedValueBox(StateMachine(limit: configuration.maxQueued))
        self.thread = NIOThreadPool(numberOfThreads: 1)
        self.context = ContextBox()
    }

    /// Commands waiting to be written.
    var queuedCount: Int { state.withLockedValue { $0.queuedCount } }

    func send(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        let id = nextID.withLockedValue { value in
            value += 1
            return value
        }
        return try await withTaskCancellationHandler {
            try await enqueue(commands, id: id)
        } onCancel: {
            if let request = state.withLockedValue({ $0.withdraw(id) }) {
                metrics?.dequeued(1)
                metrics?.cancelled()
                request.continuation.resume(throwing: CancellationError())
            }
        }
    }

    private func enqueue(_ commands: [RedisCommand], id: UInt64) async throws -> [RedisValue] {
        try await withCheckedThrowingContinuation { continuation in
            let request = Request(commands: commands, continuation: continuation)
            let action = state.withLockedValue { $0.enqueue(request, id: id) }
            switch action {
            case .startDrain, .none: metrics?.queued()
            case .fail, .refuse: break
            }
            switch action {
            case .refuse(let request):
                metrics?.refused()
                request.continuation.resume(throwing: RedisError(.overloaded))
            case .startDrain:
                threadStarted.withLockedValue { started in
                    if !started { thread.start() }
                    started = true
                }
                thread.submit { [self] workState in
                    guard workState == .active else { return failAll(RedisError(.shutdown)) }
                    drain()
                }
            case .none:
                break
            case .fail(let request):
                request.continuation.resume(throwing: RedisError(.shutdown))
            }
        }
    }

    func close() async {
        let queued = state.withLockedValue { $0.close() }
        metrics?.dequeued(queued.count)
        for request in queued {
            request.continuation.resume(throwing: RedisError(.shutdown))
        }
        try? await thread.shutdownGracefully()
        context.disconnect()
    }

    /// Callers whose replies were just delivered often send again within microseconds; waiting
    /// that long (yielding the core) saves parking and waking this thread for their next batch.
    private func lingerForFollowUps() {
        for _ in 0..<32 {
            if state.withLockedValue({ $0.hasQueued }) { return }
            sched_yield()
        }
    }

    private func failAll(_ error: RedisError) {
        while true {
            let batch = state.withLockedValue { $0.nextBatch(limit: .max) }
            if batch.isEmpty { return }
            metrics?.dequeued(batch.count)
            batch.forEach { $0.continuation.resume(throwing: error) }
        }
    }

    /// Runs on `thread` until the queue is empty.
    private func drain() {
        while true {
            lingerForFollowUps()
            let batch = state.withLockedValue { $0.nextBatch(limit: configuration.maxBatch) }
            if batch.isEmpty { return }
            metrics?.dequeued(batch.count)
            do {
                try context.connectIfNeeded(configuration, logger: logger)
                try context.append(batch.lazy.flatMap(\.commands))
                var results: [[RedisValue]] = []
                results.reserveCapacity(batch.count)
                for request in batch {
                    results.append(try request.commands.map { _ in try context.readReply() })
                }
                for (request, values) in zip(batch, results) { request.continuation.resume(returning: values) }
            } catch {
                // Whatever was written may or may not have run; the next batch reconnects.
                context.disconnect()
                batch.forEach { $0.continuation.resume(throwing: error) }
            }
        }
    }
}

/// The hiredis context of one connection.
///
/// `@unchecked Sendable`: only the connection's single drainer thread calls into it, and the
/// thread pool's submit orders successive drains; `close` disconnects after that thread has stopped.
final class ContextBox: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?

    deinit { disconnect() }

    func disconnect() {
        if let context { redisFree(context) }
        context = nil
    }

    func connectIfNeeded(_ configuration: RedisConfiguration, logger: Logger) throws {
        if let context, context.pointee.err == 0, !peerClosed(context.pointee.fd) { return }
        if context != nil { logger.debug("redis connection closed by peer; reconnecting") }
        disconnect()
        guard let fresh = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeval(configuration.connectTimeoutSeconds)) else {
            throw RedisError(.connectionFailed, serverMessage: "out of memory")
        }
        if fresh.pointee.err != 0 {
            let message = Self.errorText(fresh)
            redisFree(fresh)
            throw RedisError(.connectionFailed, serverMessage: message)
        }
        _ = redisSetTimeout(fresh, timeval(configuration.commandTimeoutSeconds))
        var one: Int32 = 1
        setsockopt(fresh.pointee.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        context = fresh
    }

    /// Queues the commands' RESP bytes in hiredis' output buffer in one call; the first
    /// `redisGetReply` writes them all.
    func append(_ commands: some Sequence<RedisCommand>) throws {
        guard let context else { throw RedisError(.connectionLost) }
        var bytes: [UInt8] = []
        for command in commands { bytes.append(contentsOf: command.encoded) }
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        if status != REDIS_OK { throw RedisError(.connectionLost, serverMessage: Self.errorText(context)) }
    }

    func readReply() throws -> RedisValue {
        guard let context else { throw RedisError(.connectionLost) }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw RedisError(.connectionLost, serverMessage: Self.errorText(context))
        }
        defer { freeReplyObject(raw) }
        return Self.value(raw.assumingMemoryBound(to: redisReply.self))
    }

    private static func value(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let item = reply.pointee
        switch item.type {
        case REDIS_REPLY_STRING:
            return .bulk(Array(UnsafeRawBufferPointer(start: item.str, count: item.len)))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: item.str, count: item.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: item.str, count: item.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(item.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<item.elements).map { value(item.element[$0]!) })
        default:
            return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// A restarted server leaves our socket readable at EOF; seeing that before writing lets the
    /// batch go to a fresh connection instead of failing.
    private func peerClosed(_ fd: Int32) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return false }
        var peek: UInt8 = 0
        return recv(fd, &peek, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
    }
}

private func timeval(_ seconds: Double) -> Foundation.timeval {
    Foundation.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
}
