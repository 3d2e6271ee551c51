import CRdKafka
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle

/// An idempotent producer. `send` returns once the broker acknowledged the message.
///
/// librdkafka never blocks `rd_kafka_producev`; delivery reports are served by `rd_kafka_poll`
/// on a dedicated thread that this service runs, never on the cooperative pool.
public final class KafkaProducer: Service, Sendable {
    private enum State: Sendable {
        case idle
        case running(KafkaHandle)
        case stopped
    }

    public let configuration: KafkaProducerConfiguration
    private let logger: Logger
    private let threads = NIOThreadPool(numberOfThreads: 2)
    private let state = NIOLockedValueBox(State.idle)
    private let stopPolling = NIOLockedValueBox(false)

    public init(configuration: KafkaProducerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Polls for delivery reports until graceful shutdown, then flushes what is queued.
    public func run() async throws {
        _ = try handle()
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Flushes queued messages (up to the flush timeout), fails what is left and stops polling.
    public func shutdown() async {
        let handle: KafkaHandle? = state.withLockedValue { state in
            defer { state = .stopped }
            if case .running(let handle) = state { return handle }
            return nil
        }
        stopPolling.withLockedValue { $0 = true }
        if let handle {
            let timeout = Int32(configuration.flushTimeoutMilliseconds)
            try? await threads.runIfActive {
                if rd_kafka_flush(handle.pointer, timeout) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    // Whatever is still queued fails its `send` instead of hanging it.
                    rd_kafka_purge(handle.pointer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                    rd_kafka_poll(handle.pointer, 0)
                }
            }
        }
        try? await threads.shutdownGracefully()
    }

    /// Sends one message and waits for the broker's acknowledgement.
    @discardableResult
    public func send(topic: String, key: [UInt8]?, value: [UInt8]) async throws -> KafkaDeliveryReport {
        let handle = try handle()
        while true {
            let error: rd_kafka_resp_err_t
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    let box = Unmanaged.passRetained(DeliveryTarget(.single(continuation)))
                    let result = Self.produce(handle, topic: topic, key: key, value: value, opaque: box.toOpaque())
                    if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                        box.release()
                        continuation.resume(throwing: QueueRefusal(error: result))
                    }
                }
            } catch let refusal as QueueRefusal {
                error = refusal.error
            }
            // A full local queue clears as deliveries complete; anything else is final.
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                throw KafkaError(.produceFailed, reason: KafkaHandle.name(error))
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @discardableResult
    public func send(topic: String, key: String?, value: [UInt8]) async throws -> KafkaDeliveryReport {
        try await send(topic: topic, key: key.map { Array($0.utf8) }, value: value)
    }

    /// True when a broker answers a metadata request within the timeout.
    public func checkBroker(timeout: Duration = .seconds(2)) async throws {
        let handle = try handle()
        let milliseconds = Int32(timeout.components.seconds * 1000)
        do {
            try await threads.runIfActive { try handle.checkBroker(timeoutMilliseconds: milliseconds) }
        } catch let error as KafkaError {
            throw error
        } catch {
            throw KafkaError(.shutdown)
        }
    }

    static func produce(_ handle: KafkaHandle, topic: String, key: [UInt8]?, value: [UInt8], opaque: UnsafeMutableRawPointer) -> rd_kafka_resp_err_t {
        value.withUnsafeBytes { valueBytes in
            if let key {
                return key.withUnsafeBytes { keyBytes in
                    conduit_rd_kafka_produce(handle.pointer, topic, keyBytes.baseAddress, keyBytes.count, valueBytes.baseAddress, valueBytes.count, nil, opaque)
                }
            }
            return conduit_rd_kafka_produce(handle.pointer, topic, nil, 0, valueBytes.baseAddress, valueBytes.count, nil, opaque)
        }
    }

    /// The librdkafka client, created on first use together with its poll thread.
    func handle() throws -> KafkaHandle {
        try state.withLockedValue { state in
            switch state {
            case .running(let handle):
                return handle
            case .stopped:
                throw KafkaError(.shutdown)
            case .idle:
                let handle = try KafkaHandle(
                    type: RD_KAFKA_PRODUCER,
                    properties: configuration.properties,
                    context: KafkaCallbackContext(logger: logger)
                ) { conf in
                    rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
                        guard let message, let opaque = message.pointee._private else { return }
                        let target = Unmanaged<DeliveryTarget>.fromOpaque(opaque).takeRetainedValue()
                        let report = message.pointee
                        if report.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                            let topic = report.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                            target.settle(.success(KafkaDeliveryReport(topic: topic, partition: report.partition, offset: report.offset)))
                        } else {
                            target.settle(.failure(KafkaError(.deliveryFailed, reason: KafkaHandle.name(report.err))))
                        }
                    }
                }
                threads.start()
                let stop = stopPolling
                threads.submit { _ in
                    while !stop.withLockedValue({ $0 }) { rd_kafka_poll(handle.pointer, 100) }
                }
                logger.debug("kafka producer started", metadata: ["librdkafka": "\(librdkafkaVersion)"])
                state = .running(handle)
                return handle
            }
        }
    }
}

/// Who waits for a message's delivery report, carried through librdkafka as the message
/// opaque (retained once per message, released by the report).
final class DeliveryTarget: Sendable {
    enum Kind: Sendable {
        case single(CheckedContinuation<KafkaDeliveryReport, any Error>)
        case batch(BatchSlot)
    }

    let kind: Kind
    init(_ kind: Kind) { self.kind = kind }

    func settle(_ result: Result<KafkaDeliveryReport, KafkaError>) {
        switch kind {
        case .single(let continuation): continuation.resume(with: result.mapError { $0 as any Error })
        case .batch(let slot): slot.batch.settle(slot.index, result)
        }
    }
}

private struct QueueRefusal: Error {
    let error: rd_kafka_resp_err_t
}
