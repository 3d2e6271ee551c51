import ConduitProtocol

/// Where `/v1/documents` puts indexing requests: `KafkaIndexingQueue`; an application test
/// keeps them in a list. `enqueue` returns once every request is durably accepted, or throws
/// and none is.
protocol IndexingQueue: Sendable {
    func enqueue(_ requests: [IndexingRequest]) async throws
}

/// Why a queue refused requests.
enum IndexingQueueError: Error, Equatable {
    /// A request is larger than the queue takes in one message.
    case tooLarge
    /// The queue could not be reached, or did not acknowledge in time.
    case unavailable
}
