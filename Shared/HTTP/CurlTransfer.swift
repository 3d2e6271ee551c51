import CCurl
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One request in flight: its easy handle, the caller's wait for the head, and the body stream.
///
/// `@unchecked Sendable`: the easy handle, header list and header lines are touched only on the
/// client's loop thread (set-up happens before the transfer is handed to it, clean-up after it
/// is removed). What other threads touch (`flow`, `head`) is behind locks.
final class CurlTransfer: NIOAsyncSequenceProducerDelegate, @unchecked Sendable {
    private struct Flow {
        var wanted = true
        var pausedInCurl = false
        var finished = false
    }

    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var headerLines: [(name: String, value: String)] = []
    private let head = NIOLockedValueBox<CheckedContinuation<HTTPResponse, any Error>?>(nil)
    private let flow = NIOLockedValueBox(Flow())
    // Both are dropped once handed out or finished: the sequence's storage holds this transfer as
    // its delegate, and keeping them here would make a cycle that outlives the request.
    private var source: HTTPBody.Producer.Source?
    private var body: HTTPBody?
    /// Set by the client: asks its loop thread to act on this transfer.
    var requestUnpause: @Sendable (CurlTransfer) -> Void = { _ in }
    var requestCancel: @Sendable (CurlTransfer) -> Void = { _ in }

    init(request: HTTPRequest, configuration: HTTPClientConfiguration) throws {
        guard let easy = curl_easy_init() else { throw HTTPClientError(.invalidRequest, reason: "curl_easy_init failed") }
        self.easy = easy
        let made = HTTPBody.Producer.makeSequence(
            elementType: [UInt8].self,
            failureType: (any Error).self,
            backPressureStrategy: .init(lowWatermark: configuration.bufferedChunks / 2, highWatermark: configuration.bufferedChunks),
            finishOnDeinit: false,
            delegate: self
        )
        source = made.source
        body = HTTPBody(wrapped: made.sequence)
        try configure(request, configuration)
    }

    deinit {
        curl_easy_cleanup(easy)
        if let headerList { curl_slist_free_all(headerList) }
    }

    private func configure(_ request: HTTPRequest, _ configuration: HTTPClientConfiguration) throws {
        var failed = false
        func check(_ code: CURLcode) { if code != CURLE_OK { failed = true } }
        check(conduit_curl_easy_setopt_pointer(easy, CURLOPT_URL, request.url))
        check(conduit_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        check(conduit_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1))
        check(conduit_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.milliseconds))
        if let timeout = request.timeout ?? configuration.defaultTimeout {
            check(conduit_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeout.milliseconds))
        }
        let method = request.method.uppercased()
        if method == "HEAD" {
            check(conduit_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        } else if method != "GET" || request.body != nil {
            check(conduit_curl_easy_setopt_pointer(easy, CURLOPT_CUSTOMREQUEST, method))
        }
        if let body = request.body {
            // COPYPOSTFIELDS copies the bytes, so the request owns nothing past this call.
            check(conduit_curl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            body.withUnsafeBytes { check(conduit_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1))) }
        }
        // No `Expect: 100-continue` round trip on large bodies.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            guard !line.contains("\r"), !line.contains("\n") else { throw HTTPClientError(.invalidRequest, reason: "header contains a line break") }
            headerList = curl_slist_append(headerList, line)
        }
        check(conduit_curl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, headerList))
        let opaque = Unmanaged.passUnretained(self).toOpaque()
        check(conduit_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, opaque))
        check(conduit_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, opaque))
        check(conduit_curl_easy_setopt_write(easy) { pointer, size, count, opaque in
            Unmanaged<CurlTransfer>.fromOpaque(opaque!).takeUnretainedValue().received(pointer, size * count)
        })
        check(conduit_curl_easy_setopt_header(easy) { pointer, size, count, opaque in
            Unmanaged<CurlTransfer>.fromOpaque(opaque!).takeUnretainedValue().receivedHeader(pointer, size * count)
        })
        if failed { throw HTTPClientError(.invalidRequest, reason: "unsupported option") }
    }

    /// Waits for the response head. Must be set before the transfer starts.
    func awaitHead(_ continuation: CheckedContinuation<HTTPResponse, any Error>) {
        head.withLockedValue { $0 = continuation }
    }

    // MARK: loop thread

    private func receivedHeader(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard let pointer else { return count }
        let line = UnsafeRawBufferPointer(start: pointer, count: count)
        if line.starts(with: "HTTP/".utf8) {
            // A new status line (after 100 Continue or a redirect) starts a new header block.
            headerLines = []
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            // Bytes, not Foundation: this runs for every header of every response.
            func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
            var start = colon + 1
            var end = count
            while start < end, isSpace(line[start]) { start += 1 }
            while end > start, isSpace(line[end - 1]) { end -= 1 }
            headerLines.append((String(decoding: line[..<colon], as: UTF8.self), String(decoding: line[start..<end], as: UTF8.self)))
        }
        return count
    }

    private func received(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        deliverHead()
        let pause = flow.withLockedValue { flow -> Bool in
            if flow.wanted {
                // If this yield says stop, only a later produceMore sets it back.
                flow.wanted = false
                return false
            }
            flow.pausedInCurl = true
            return true
        }
        // curl keeps the bytes and offers them again after unpause.
        if pause { return 0x1000_0001 }  // CURL_WRITEFUNC_PAUSE
        let chunk = Array(UnsafeRawBufferPointer(start: pointer, count: count))
        guard let source else { return 0 }
        switch source.yield(chunk) {
        case .produceMore:
            flow.withLockedValue { $0.wanted = true }
        case .stopProducing:
            break
        case .dropped:
            return 0  // the reader is gone: abort the transfer
        }
        return count
    }

    private func deliverHead() {
        guard let continuation = head.withLockedValue({ value -> CheckedContinuation<HTTPResponse, any Error>? in
            defer { value = nil }
            return value
        }) else { return }
        var status = 0
        _ = conduit_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        guard let body else { return }
        self.body = nil
        continuation.resume(returning: HTTPResponse(status: status, headers: headerLines, body: body))
    }

    /// The transfer ended (on the loop thread, after its removal from the multi handle).
    func complete(_ result: CURLcode) {
        flow.withLockedValue { $0.finished = true }
        defer {
            source = nil
            body = nil
        }
        if result == CURLE_OK {
            deliverHead()
            source?.finish()
            return
        }
        let error = Self.error(for: result)
        if let continuation = head.withLockedValue({ value -> CheckedContinuation<HTTPResponse, any Error>? in
            defer { value = nil }
            return value
        }) {
            continuation.resume(throwing: error)
        }
        source?.finish(error)
    }

    func cancelled() {
        complete(CURLE_ABORTED_BY_CALLBACK)
    }

    /// Whether curl holds the transfer paused; clears the mark.
    func takeUnpause() -> Bool {
        flow.withLockedValue { flow in
            defer { flow.pausedInCurl = false }
            return flow.pausedInCurl
        }
    }

    static func error(for result: CURLcode) -> HTTPClientError {
        let name = String(cString: curl_easy_strerror(result))
        switch result {
        case CURLE_OPERATION_TIMEDOUT: return HTTPClientError(.timeout, reason: name)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return HTTPClientError(.connectFailed, reason: name)
        case CURLE_ABORTED_BY_CALLBACK, CURLE_WRITE_ERROR: return HTTPClientError(.cancelled, reason: name)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: return HTTPClientError(.invalidRequest, reason: name)
        default: return HTTPClientError(.transferFailed, reason: name)
        }
    }

    // MARK: NIOAsyncSequenceProducerDelegate (reader side)

    func produceMore() {
        let unpause = flow.withLockedValue { flow -> Bool in
            flow.wanted = true
            return flow.pausedInCurl && !flow.finished
        }
        if unpause { requestUnpause(self) }
    }

    func didTerminate() {
        if !flow.withLockedValue({ $0.finished }) { requestCancel(self) }
    }
}
