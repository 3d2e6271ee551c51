import CRdKafka
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A consumer-group member. Messages arrive through `messages`; an offset is committed only
/// after `markDurable` was called for that message (and the ones before it on its partition).
///
/// `rd_kafka_consumer_poll` blocks, so it runs on a dedicated thread; when the reader falls
/// behind by `bufferSize` messages or `bufferBytes` bytes that thread stops polling until the
/// reader catches up (`PollStateMachine` decides).
public final class KafkaConsumer: Service, Sendable {
    public let configuration: KafkaConsumerConfiguration
    /// The consumed messages, in order per partition. One reader only; ends on shutdown.
    public let messages: KafkaMessages

    private let logger: Logger
    private let source: KafkaMessages.Producer.Source
    private let demand: ConsumerDemand
    let threads = NIOThreadPool(numberOfThreads: 2)
    let handle = NIOLockedValueBox<KafkaHandle?>(nil)

    public init(configuration: KafkaConsumerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let demand = ConsumerDemand(byteLimit: configuration.bufferBytes)
        let low = max(1, configuration.bufferSize / 2)
        let made = KafkaMessages.Producer.makeSequence(
            elementType: KafkaMessage.self,
            failureType: (any Error).self,
            backPressureStrategy: .init(lowWatermark: low, highWatermark: configuration.bufferSize),
            finishOnDeinit: false,
            delegate: demand
        )
        self.demand = demand
        self.source = made.source
        self.messages = KafkaMessages(wrapped: made.sequence, demand: demand)
    }

    /// Bytes of messages handed over but not yet taken by the reader.
    public var bufferedBytes: Int { demand.bufferedBytes }

    /// Joins the group and polls until graceful shutdown or cancellation, then commits what is
    /// durable, leaves the group and ends `messages`.
    public func run() async throws {
        let handle: KafkaHandle
        do {
            handle = try makeHandle()
        } catch {
            source.finish(error)
            throw error
        }
        self.handle.withLockedValue { $0 = handle }
        threads.start()
        let demand = self.demand
        let source = self.source
        let topics = configuration.topics
        let logger = self.logger
        // The poll loop has a thread of its own rather than one of `threads`: if librdkafka's close
        // never returns, only that thread is lost, and `threads` still shut down.
        let exit = PollLoopExit()
        let thread = Thread {
            Self.pollLoop(handle: handle, topics: topics, source: source, demand: demand, logger: logger)
            exit.signal(timedOut: false)
        }
        thread.name = "kafka-consumer"
        thread.start()
        let closeTimeout = Duration.milliseconds(configuration.closeTimeoutMilliseconds)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await exit.wait()
            } onCancel: {
                demand.stop()
                exit.limit(to: closeTimeout)
            }
        } onGracefulShutdown: {
            demand.stop()
            exit.limit(to: closeTimeout)
        }
        if exit.timedOut {
            logger.error("kafka consumer did not leave its group in time; shutdown goes on without it", metadata: [
                "kafka_group": "\(configuration.groupID)", "timeout_ms": "\(configuration.closeTimeoutMilliseconds)",
            ])
            source.finish()
        }
        try? await threads.shutdownGracefully()
    }

    /// Records that the effect of `message` is durable; its offset will be committed.
    public func markDurable(_ message: KafkaMessage) throws {
        guard let handle = handle.withLockedValue({ $0 }) else { throw KafkaError(.shutdown) }
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, message.topic, message.partition).pointee.offset = message.offset + 1
        let error = rd_kafka_offsets_store(handle.pointer, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            // Typically the partition was revoked by a rebalance: its new owner will see the message again.
            throw KafkaError(.commitFailed, reason: KafkaHandle.name(error))
        }
    }

    /// Commits the stored offsets now instead of at the next interval.
    public func commit() async throws {
        guard let handle = handle.withLockedValue({ $0 }) else { throw KafkaError(.shutdown) }
        let error = try await threads.runIfActive { rd_kafka_commit(handle.pointer, nil, 0) }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR || error == RD_KAFKA_RESP_ERR__NO_OFFSET else {
            throw KafkaError(.commitFailed, reason: KafkaHandle.name(error))
        }
    }

    private func makeHandle() throws -> KafkaHandle {
        try KafkaHandle(type: RD_KAFKA_CONSUMER, properties: configuration.properties, context: KafkaCallbackContext(logger: logger)) { conf in
            rd_kafka_conf_set_rebalance_cb(conf) { handle, error, partitions, opaque in
                guard let handle else { return }
                let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
                let count = partitions?.pointee.cnt ?? 0
                let logger = opaque.map { Unmanaged<KafkaCallbackContext>.fromOpaque($0).takeUnretainedValue().logger }
                switch error {
                case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                    logger?.info("kafka partitions assigned", metadata: ["kafka_partitions": "\(count)"])
                    if cooperative {
                        if let failure = rd_kafka_incremental_assign(handle, partitions) { rd_kafka_error_destroy(failure) }
                    } else {
                        rd_kafka_assign(handle, partitions)
                    }
                default:
                    logger?.info("kafka partitions revoked", metadata: ["kafka_partitions": "\(count)"])
                    // Hand over what is durable so the next owner does not redo it.
                    rd_kafka_commit(handle, nil, 0)
                    if cooperative {
                        if let failure = rd_kafka_incremental_unassign(handle, partitions) { rd_kafka_error_destroy(failure) }
                    } else {
                        rd_kafka_assign(handle, nil)
                    }
                }
            }
        }
    }

    private static func pollLoop(handle: KafkaHandle, topics: [String], source: KafkaMessages.Producer.Source, demand: ConsumerDemand,
                                 logger: Logger) {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let subscribed = rd_kafka_subscribe(handle.pointer, list)
        rd_kafka_topic_partition_list_destroy(list)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            source.finish(KafkaError(.consumerFailed, reason: KafkaHandle.name(subscribed)))
            return
        }
        while demand.nextStep() == .poll {
            guard let raw = rd_kafka_consumer_poll(handle.pointer, 100) else { continue }
            let record = raw.pointee
            if record.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if record.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    logger.debug("kafka consumer event", metadata: ["kafka_error": "\(KafkaHandle.name(record.err))"])
                }
                rd_kafka_message_destroy(raw)
                continue
            }
            let message = KafkaMessage(
                topic: record.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "",
                partition: record.partition,
                offset: record.offset,
                key: record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) },
                value: record.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: record.len)) } ?? []
            )
            rd_kafka_message_destroy(raw)
            demand.willYield(bytes: message.byteCount)
            switch source.yield(message) {
            case .produceMore: demand.yielded(.produceMore)
            case .stopProducing: demand.yielded(.stopProducing)
            case .dropped: demand.yielded(.dropped)
            }
        }
        // Commits the stored offsets and leaves the group, so a restart resumes from there.
        rd_kafka_consumer_close(handle.pointer)
        source.finish()
    }
}

/// The end of a consumer's poll loop, awaited by `run`: the loop's thread signals it when close
/// returned, or `limit` does when close took too long.
final class PollLoopExit: Sendable {
    private struct State {
        var done = false
        var timedOut = false
        var limited = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = NIOLockedValueBox(State())

    var timedOut: Bool { state.withLockedValue { $0.timedOut } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLockedValue { state -> Bool in
                if state.done { return true }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func signal(timedOut: Bool) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard !state.done else { return nil }
            state.done = true
            state.timedOut = timedOut
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Ends the wait after `timeout` if the loop has not ended by then (once; later calls do nothing).
    func limit(to timeout: Duration) {
        let first = state.withLockedValue { state -> Bool in
            defer { state.limited = true }
            return !state.limited && !state.done
        }
        guard first else { return }
        Task {
            try? await Task.sleep(for: timeout)
            self.signal(timedOut: true)
        }
    }
}

/// The consumed messages as an `AsyncSequence`.
public struct KafkaMessages: AsyncSequence, Sendable {
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        KafkaMessage, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, ConsumerDemand
    >
    let wrapped: Producer
    let demand: ConsumerDemand

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(wrapped: wrapped.makeAsyncIterator(), demand: demand) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var wrapped: Producer.AsyncIterator
        let demand: ConsumerDemand
        public mutating func next() async throws -> KafkaMessage? {
            let message = try await wrapped.next()
            if let message { demand.taken(message.byteCount) }
            return message
        }
    }
}

/// Where the poll thread waits, and what wakes it: the reader's demand and the bytes it takes,
/// and shutdown, all through `KafkaConsumer.PollStateMachine`.
///
/// `@unchecked Sendable` is safe: the one mutable property, `machine`, is only read or changed
/// with `condition` locked (every method goes through `locked`, `wakeIf` or `nextStep`), and
/// `NSCondition` itself is thread-safe. The poll thread waits on that same condition, and every
/// change that can end a wait signals it under the lock, so no wake-up is lost.
final class ConsumerDemand: NIOAsyncSequenceProducerDelegate, @unchecked Sendable {
    private let condition = NSCondition()
    private var machine: KafkaConsumer.PollStateMachine

    init(byteLimit: Int) {
        machine = .init(byteLimit: byteLimit)
    }

    var bufferedBytes: Int { locked { $0.bufferedBytes } }

    /// The poll thread's next step; blocks while the machine says wait.
    func nextStep() -> KafkaConsumer.PollStateMachine.Step {
        condition.lock()
        defer { condition.unlock() }
        while machine.step == .wait { condition.wait() }
        return machine.step
    }

    func willYield(bytes: Int) { locked { $0.willYield(bytes: bytes) } }

    func yielded(_ outcome: KafkaConsumer.PollStateMachine.YieldOutcome) { locked { $0.yielded(outcome) } }

    func taken(_ bytes: Int) { wakeIf { $0.taken(bytes: bytes) } }

    func stop() { wakeIf { $0.stop() } }

    func produceMore() { wakeIf { $0.demanded() } }

    func didTerminate() { stop() }

    private func locked<T>(_ body: (inout KafkaConsumer.PollStateMachine) -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body(&machine)
    }

    private func wakeIf(_ body: (inout KafkaConsumer.PollStateMachine) -> Bool) {
        condition.lock()
        if body(&machine) { condition.signal() }
        condition.unlock()
    }
}

extension KafkaConsumer {
    /// Succeeds when a broker answers a metadata request within the timeout (after `run` started).
    public func checkBroker(timeout: Duration = .seconds(2)) async throws {
        guard let handle = handle.withLockedValue({ $0 }) else { throw KafkaError(.brokerUnreachable, reason: "consumer not started") }
        let milliseconds = Int32(timeout.components.seconds * 1000)
        try await threads.runIfActive { try handle.checkBroker(timeoutMilliseconds: milliseconds) }
    }
}

/// How far one assigned partition's consumer is behind its log.
public struct PartitionLag: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// Messages between the consumer's position and the partition's end (0 when caught up).
    public var messages: Int64
}

extension KafkaConsumer {
    /// The lag of every partition this member owns: the partition's high watermark as last
    /// fetched minus the consumer's position. Both come from librdkafka's local state (no broker
    /// round trip), so this is cheap; it runs on the consumer's threads all the same. A partition
    /// with no position yet (nothing fetched since assignment) is left out.
    public func lag() async -> [PartitionLag] {
        guard let handle = handle.withLockedValue({ $0 }) else { return [] }
        return (try? await threads.runIfActive { Self.lag(handle) }) ?? []
    }

    private static func lag(_ handle: KafkaHandle) -> [PartitionLag] {
        var assigned: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle.pointer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR, let list = assigned else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_position(handle.pointer, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [] }
        var lags: [PartitionLag] = []
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            guard element.offset >= 0, let name = element.topic else { continue }
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(handle.pointer, name, element.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { continue }
            lags.append(PartitionLag(topic: String(cString: name), partition: element.partition, messages: max(0, high - element.offset)))
        }
        return lags
    }
}
