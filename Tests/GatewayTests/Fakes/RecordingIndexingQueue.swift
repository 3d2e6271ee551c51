import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import Hummingbird
import Prometheus
import TestSupport

/// Indexing requests kept in a list; `failure` makes the queue refuse everything.
final class RecordingIndexingQueue: IndexingQueue {
    private let queued = Locked<[IndexingRequest]>([])
    let failure: IndexingQueueError?
    var requests: [IndexingRequest] { queued.withLock { $0 } }

    init(failure: IndexingQueueError? = nil) { self.failure = failure }

    func enqueue(_ requests: [IndexingRequest]) async throws {
        if let failure { throw failure }
        queued.withLock { $0 += requests }
    }
}
