import CCurl
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle

/// Carries the multi handle to the loop thread.
///
/// `@unchecked Sendable`: after this hand-off only the loop thread uses the handle, except
/// `curl_multi_wakeup`, which libcurl documents as safe to call from any thread.
private struct MultiHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

private let curlGlobalInit: Bool = curl_global_init(3) == CURLE_OK  // CURL_GLOBAL_ALL

/// An HTTP client over libcurl's multi interface. One dedicated thread drives every transfer
/// (`curl_multi_poll`/`perform`); callers only enqueue work and wake it, so no event loop and no
/// task of the cooperative pool ever waits on the network.
public final class HTTPClient: Service, Sendable {
    private enum Command {
        case add(CurlTransfer)
        case cancel(CurlTransfer)
        case unpause(CurlTransfer)
    }

    private struct Shared: @unchecked Sendable {
        // `@unchecked`: CURLM is a raw pointer; libcurl documents curl_multi_wakeup as callable
        // from any thread, and every other use of it is on the loop thread.
        var multi: UnsafeMutableRawPointer?
        var commands: [Command] = []
        var started = false
        var stopping = false

        /// Wakes the loop thread out of `curl_multi_poll`. Called with the lock held: the loop
        /// clears `multi` and cleans it up under the same lock, so no wakeup can reach a handle
        /// that `curl_multi_cleanup` has freed.
        func wakeLoop() {
            if let multi { curl_multi_wakeup(multi) }
        }
    }

    public let configuration: HTTPClientConfiguration
    private let logger: Logger
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let shared = NIOLockedValueBox(Shared())

    public init(configuration: HTTPClientConfiguration = .init(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        try start()
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Cancels transfers in flight and stops the loop thread.
    public func shutdown() async {
        shared.withLockedValue { shared in
            shared.stopping = true
            shared.wakeLoop()
        }
        try? await thread.shutdownGracefully()
    }

    /// Starts the request and returns when the response head has arrived; the body then streams.
    /// Cancelling the calling task, or dropping the body before its end, aborts the transfer.
    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        try start()
        let transfer = try CurlTransfer(request: request, configuration: configuration)
        transfer.requestUnpause = { [weak self] in self?.enqueue(.unpause($0)) }
        transfer.requestCancel = { [weak self] in self?.enqueue(.cancel($0)) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.awaitHead(continuation)
                enqueue(.add(transfer))
            }
        } onCancel: {
            enqueue(.cancel(transfer))
        }
    }

    private func enqueue(_ command: Command) {
        let queued = shared.withLockedValue { shared -> Bool in
            guard !shared.stopping, shared.multi != nil else { return false }
            shared.commands.append(command)
            shared.wakeLoop()
            return true
        }
        if !queued, case .add(let transfer) = command { transfer.complete(CURLE_ABORTED_BY_CALLBACK) }
    }

    private func start() throws {
        guard curlGlobalInit else { throw HTTPClientError(.shutdown, reason: "curl_global_init failed") }
        try shared.withLockedValue { shared in
            if shared.stopping { throw HTTPClientError(.shutdown) }
            if shared.started { return }
            guard let multi = curl_multi_init() else { throw HTTPClientError(.shutdown, reason: "curl_multi_init failed") }
            _ = conduit_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxConnections)
            _ = conduit_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
            shared.multi = multi
            shared.started = true
            thread.start()
            let box = self.shared
            let logger = self.logger
            let handle = MultiHandle(pointer: multi)
            thread.submit { _ in Self.loop(multi: handle.pointer, shared: box, logger: logger) }
        }
    }

    /// The loop thread: applies queued commands, drives transfers, sleeps in `curl_multi_poll`.
    private static func loop(multi: UnsafeMutableRawPointer, shared: NIOLockedValueBox<Shared>, logger: Logger) {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        while true {
            let (commands, stopping) = shared.withLockedValue { shared -> ([Command], Bool) in
                defer { shared.commands = [] }
                return (shared.commands, shared.stopping)
            }
            for command in commands {
                switch command {
                case .add(let transfer):
                    if curl_multi_add_handle(multi, transfer.easy) == CURLM_OK {
                        active[transfer.easy] = transfer
                    } else {
                        transfer.complete(CURLE_FAILED_INIT)
                    }
                case .cancel(let transfer):
                    // Removing an unfinished transfer closes its connection rather than reusing it.
                    if active.removeValue(forKey: transfer.easy) != nil {
                        curl_multi_remove_handle(multi, transfer.easy)
                        transfer.cancelled()
                        logger.debug("http transfer cancelled")
                    }
                case .unpause(let transfer):
                    if active[transfer.easy] != nil, transfer.takeUnpause() {
                        curl_easy_pause(transfer.easy, 0)  // CURLPAUSE_CONT
                    }
                }
            }
            if stopping {
                for (easy, transfer) in active {
                    curl_multi_remove_handle(multi, easy)
                    transfer.complete(CURLE_ABORTED_BY_CALLBACK)
                }
                active = [:]
                shared.withLockedValue { shared in
                    shared.multi = nil
                    curl_multi_cleanup(multi)
                }
                return
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let result = message.pointee.data.result
                curl_multi_remove_handle(multi, easy)
                active.removeValue(forKey: easy)?.complete(result)
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }
}
