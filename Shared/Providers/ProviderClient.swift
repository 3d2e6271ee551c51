import ConduitProtocol
import Foundation
import HTTP
import NIOConcurrencyHelpers

/// One attempt at one deployment: sends the adapter's request over the libcurl client, maps
/// statuses and transport failures to `ProviderError`, and enforces the deployment's timeouts.
public struct ProviderClient: Sendable {
    public let http: HTTPClient
    public let keys: APIKeys
    /// Largest non-streamed response body accepted.
    public var maxResponseBytes = 16 << 20

    public init(http: HTTPClient, keys: APIKeys) {
        self.http = http
        self.keys = keys
    }

    /// A non-streamed completion.
    public func complete(_ request: ChatCompletionRequest, deployment: Deployment, stamp: ResponseStamp) async throws -> ChatCompletion {
        let adapter = deployment.provider.adapter
        let key = keys.key(for: deployment)
        let outbound = try adapter.makeRequest(request, for: deployment, apiKey: key, stream: false)
        do {
            let response = try await http.execute(outbound)
            let body = try await response.body.collect(upTo: maxResponseBytes)
            guard response.status == 200 else { throw Self.statusError(response, body: body, adapter: adapter, key: key) }
            return try adapter.completion(from: body, stamp: stamp)
        } catch {
            throw Self.providerError(error, deployment: deployment)
        }
    }

    /// Opens a stream and returns once its first chunk has arrived (or the stream ended whole),
    /// so every failure up to that point is still an ordinary error the caller may retry.
    /// Dropping the returned stream cancels the upstream transfer.
    public func stream(_ request: ChatCompletionRequest, deployment: Deployment, stamp: ResponseStamp) async throws -> ProviderStream {
        let adapter = deployment.provider.adapter
        let key = keys.key(for: deployment)
        let outbound = try adapter.makeRequest(request, for: deployment, apiKey: key, stream: true)
        let (events, continuation) = AsyncThrowingStream<ProviderStream.Event, any Error>.makeStream()
        let opened = OpenSignal()
        let http = self.http
        let producer = Task {
            do {
                let response = try await http.execute(outbound)
                guard response.status == 200 else {
                    let body = try await response.body.collect(upTo: 1 << 20)
                    throw Self.statusError(response, body: body, adapter: adapter, key: key)
                }
                var translator = adapter.streamTranslator(stamp: stamp)
                for try await event in response.body.events {
                    for chunk in try translator.translate(event) {
                        continuation.yield(.chunk(chunk))
                        opened.succeed()
                    }
                    if translator.isFinished { break }
                }
                guard translator.isFinished else {
                    throw ProviderError(.streamInterrupted, message: "the stream ended before its end marker")
                }
                continuation.yield(.finished(translator.usage))
                opened.succeed()
                continuation.finish()
            } catch {
                let mapped = opened.timedOut
                    ? ProviderError(.timeout, message: "no first token within \(deployment.timeouts.firstByte)", deployment: deployment.id)
                    : Self.providerError(error, deployment: deployment)
                if !opened.fail(mapped) { continuation.finish(throwing: mapped) }
            }
        }
        continuation.onTermination = { _ in producer.cancel() }
        let watchdog = Task {
            try await Task.sleep(for: deployment.timeouts.firstByte)
            if opened.markTimedOut() { producer.cancel() }
        }
        defer { watchdog.cancel() }
        try await withTaskCancellationHandler {
            try await opened.wait()
        } onCancel: {
            producer.cancel()
        }
        return ProviderStream(events: events, producer: producer)
    }

    /// The provider's message, with the deployment's key cut out should the provider echo it
    /// (some quote a rejected key back, partly masked or not).
    static func statusError(_ response: HTTP.HTTPResponse, body: [UInt8], adapter: any ProviderAdapter, key: String?) -> ProviderError {
        var message = adapter.errorMessage(from: body) ?? "the provider answered HTTP \(response.status)"
        if let key, key.count >= 4 { message = message.replacingOccurrences(of: key, with: "[key]") }
        return ProviderError.fromStatus(response.status, message: message, retryAfter: RetryPolicy.retryAfter(response.header("Retry-After")))
    }

    static func providerError(_ error: any Error, deployment: Deployment) -> ProviderError {
        var mapped: ProviderError
        switch error {
        case let error as ProviderError:
            mapped = error
        case let error as HTTPClientError:
            switch error.code {
            case .timeout: mapped = ProviderError(.timeout, message: "the provider did not answer in time")
            case .connectFailed: mapped = ProviderError(.connectFailed, message: "the provider could not be reached")
            case .cancelled: mapped = ProviderError(.cancelled, message: "the request was cancelled")
            case .bodyTooLarge: mapped = ProviderError(.malformedResponse, message: "the provider's response is too large")
            default: mapped = ProviderError(.streamInterrupted, message: "the connection to the provider failed")
            }
        case is CancellationError:
            mapped = ProviderError(.cancelled, message: "the request was cancelled")
        default:
            mapped = ProviderError(.malformedResponse, message: "the provider's response could not be read")
        }
        mapped.deployment = deployment.id
        return mapped
    }
}

/// The rest of a stream whose first chunk has arrived. One consumer.
public struct ProviderStream: AsyncSequence, Sendable {
    public enum Event: Sendable {
        case chunk(ChatCompletionChunk)
        /// The provider's end marker, with its usage when it sent any.
        case finished(ProviderUsage?)
    }

    let events: AsyncThrowingStream<Event, any Error>
    let producer: Task<Void, Never>

    /// A stream of `events`; `cancel()` cancels `producer`, the task that feeds them.
    public init(events: AsyncThrowingStream<Event, any Error>, producer: Task<Void, Never>) {
        self.events = events
        self.producer = producer
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<Event, any Error>.AsyncIterator {
        events.makeAsyncIterator()
    }

    /// Stops the upstream transfer.
    public func cancel() { producer.cancel() }
}

/// Resolves the wait in `ProviderClient.stream` exactly once: first chunk, failure or timeout.
private final class OpenSignal: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, any Error>?
        var outcome: Result<Void, ProviderError>?
        var timedOut = false
    }
    private let state = NIOLockedValueBox(State())

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLockedValue { state -> Result<Void, ProviderError>? in
                if state.outcome == nil { state.continuation = continuation }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    func succeed() { _ = resolve(.success(())) }

    /// False when the wait was already resolved (the error then belongs to the stream).
    func fail(_ error: ProviderError) -> Bool { resolve(.failure(error)) }

    /// True when the stream had not opened yet, so the caller should cancel it.
    func markTimedOut() -> Bool {
        state.withLockedValue { state in
            guard state.outcome == nil else { return false }
            state.timedOut = true
            return true
        }
    }

    var timedOut: Bool { state.withLockedValue { $0.timedOut } }

    private func resolve(_ outcome: Result<Void, ProviderError>) -> Bool {
        let continuation = state.withLockedValue { state -> CheckedContinuation<Void, any Error>?? in
            guard state.outcome == nil else { return .none }
            state.outcome = outcome
            defer { state.continuation = nil }
            return .some(state.continuation)
        }
        guard case .some(let waiting) = continuation else { return false }
        waiting?.resume(with: outcome)
        return true
    }
}
