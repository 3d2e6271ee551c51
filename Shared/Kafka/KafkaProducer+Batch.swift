import CRdKafka
import NIOConcurrencyHelpers

/// A message to produce.
public struct KafkaOutgoingMessage: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]

    public init(topic: String, key: [UInt8]?, value: [UInt8]) {
        self.topic = topic
        self.key = key
        self.value = value
    }
}

extension KafkaProducer {
    /// Sends many messages and returns when the broker has acknowledged all of them, with their
    /// reports in the order given. One wait for the whole batch instead of one per message.
    /// If any message fails, the first error is thrown after every message has been settled.
    public func send(batch messages: [KafkaOutgoingMessage]) async throws -> [KafkaDeliveryReport] {
        if messages.isEmpty { return [] }
        let handle = try handle()
        return try await withCheckedThrowingContinuation { continuation in
            let batch = DeliveryBatch(count: messages.count, continuation: continuation)
            Task {
                for (index, message) in messages.enumerated() {
                    await produce(message, slot: BatchSlot(batch: batch, index: index), handle: handle)
                }
            }
        }
    }

    /// Queues one message of a batch, waiting out a full local queue; a refusal settles its slot.
    private func produce(_ message: KafkaOutgoingMessage, slot: BatchSlot, handle: KafkaHandle) async {
        while true {
            let opaque = Unmanaged.passRetained(DeliveryTarget(.batch(slot))).toOpaque()
            let result = Self.produce(handle, topic: message.topic, key: message.key, value: message.value, opaque: opaque)
            if result == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            Unmanaged<DeliveryTarget>.fromOpaque(opaque).release()
            if result == RD_KAFKA_RESP_ERR__QUEUE_FULL, (try? await Task.sleep(for: .milliseconds(2))) != nil { continue }
            slot.batch.settle(slot.index, .failure(KafkaError(.produceFailed, reason: KafkaHandle.name(result))))
            return
        }
    }
}

/// Collects the reports of one batch and resumes its caller when the last one arrives.
final class DeliveryBatch: Sendable {
    private struct State {
        var reports: [KafkaDeliveryReport?]
        var remaining: Int
        var firstError: KafkaError?
        var continuation: CheckedContinuation<[KafkaDeliveryReport], any Error>?
    }

    private let state: NIOLockedValueBox<State>

    init(count: Int, continuation: CheckedContinuation<[KafkaDeliveryReport], any Error>) {
        state = NIOLockedValueBox(State(reports: Array(repeating: nil, count: count), remaining: count, continuation: continuation))
    }

    func settle(_ index: Int, _ result: Result<KafkaDeliveryReport, KafkaError>) {
        let finished = state.withLockedValue { state -> (CheckedContinuation<[KafkaDeliveryReport], any Error>, Result<[KafkaDeliveryReport], KafkaError>)? in
            switch result {
            case .success(let report): state.reports[index] = report
            case .failure(let error): state.firstError = state.firstError ?? error
            }
            state.remaining -= 1
            guard state.remaining == 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            if let error = state.firstError { return (continuation, .failure(error)) }
            return (continuation, .success(state.reports.map { $0! }))
        }
        if let (continuation, outcome) = finished { continuation.resume(with: outcome.mapError { $0 as any Error }) }
    }
}

struct BatchSlot: Sendable {
    let batch: DeliveryBatch
    let index: Int
}
