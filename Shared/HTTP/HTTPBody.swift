import NIOCore

/// A response body as it arrives, chunk by chunk. One reader; dropping the iterator before the
/// end cancels the transfer and closes its connection.
public struct HTTPBody: AsyncSequence, Sendable {
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        [UInt8], any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, CurlTransfer
    >
    let wrapped: Producer

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(wrapped: wrapped.makeAsyncIterator()) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var wrapped: Producer.AsyncIterator
        public mutating func next() async throws -> [UInt8]? { try await wrapped.next() }
    }

    /// The whole body, failing with `.bodyTooLarge` past `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in self {
            guard bytes.count + chunk.count <= maxBytes else { throw HTTPClientError(.bodyTooLarge) }
            bytes += chunk
        }
        return bytes
    }

    /// The body parsed as server-sent events.
    public var events: SSEEvents { SSEEvents(body: self) }
}

/// A body read as `text/event-stream`.
public struct SSEEvents: AsyncSequence, Sendable {
    let body: HTTPBody

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: body.makeAsyncIterator()) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: HTTPBody.AsyncIterator
        var parser = SSEParser()
        var ready: [SSEEvent] = []
        var finished = false

        public mutating func next() async throws -> SSEEvent? {
            while ready.isEmpty {
                if finished { return nil }
                if let chunk = try await chunks.next() {
                    ready = parser.feed(chunk)
                } else {
                    finished = true
                    ready = parser.finish()
                }
            }
            return ready.removeFirst()
        }
    }
}
