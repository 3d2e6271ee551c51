import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Testing
import TestSupport

/// The router every service starts from, driven in-process.
struct RouterTests {
    struct Failure: Error {}

    static func makeApp(
        readiness: [ReadinessCheck] = [],
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) throws -> some ApplicationProtocol {
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(["CONDUIT_GATEWAY_PORT": "0"]))
        let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: readiness)
        router.get("/boom") { _, _ -> String in throw Failure() }
        router.get("/denied") { _, _ -> String in throw APIError(status: .forbidden, type: .permission, message: "no", code: "forbidden") }
        router.post("/chat") { request, context -> String in
            let body = try await request.decodeJSON(ChatCompletionRequest.self, context: context)
            return body.model
        }
        router.get("/whoami") { _, context in "\(context.requestID) \(context.trace.traceID)" }
        router.get("/stream") { _, _ in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "first "))
                // Held open until the test has looked (at most 30 s), however slow the machine.
                _ = try await eventually(within: .seconds(30)) { RouterTests.streamReleased.withLock { $0 } }
                try await writer.write(ByteBuffer(string: "last"))
                try await writer.finish(nil)
            })
        }
        return makeConduitApplication(router: router, configuration: configuration, services: [], logger: Logger(label: "test"))
    }

    static func envelope(_ buffer: ByteBuffer) throws -> ErrorEnvelope {
        try JSONDecoder().decode(ErrorEnvelope.self, from: Data(buffer.readableBytesView))
    }

    @Test func requestIDIsGeneratedOrKeptAndEchoed() async throws {
        try await Self.makeApp().test(.router) { client in
            try await client.execute(uri: "/whoami", method: .get) { response in
                let id = try #require(response.headers[HTTPField.Name("X-Request-Id")!])
                #expect(UUID(uuidString: id) != nil)
                #expect(String(buffer: response.body).hasPrefix(id))
            }
            try await client.execute(uri: "/whoami", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "req-42"]) { response in
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] == "req-42")
            }
            // An id that could forge log lines is replaced.
            try await client.execute(uri: "/whoami", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "a b\tc"]) { response in
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] != "a b\tc")
            }
        }
    }

    @Test func traceparentIsContinuedWithANewSpan() async throws {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        try await Self.makeApp().test(.router) { client in
            try await client.execute(uri: "/whoami", method: .get, headers: [HTTPField.Name("traceparent")!: parent]) { response in
                let returned = try #require(response.headers[HTTPField.Name("traceparent")!].flatMap(TraceContext.init(traceparent:)))
                #expect(returned.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
                #expect(returned.spanID != "00f067aa0ba902b7")
                #expect(String(buffer: response.body).hasSuffix("4bf92f3577b34da6a3ce929d0e0e4736"))
            }
            try await client.execute(uri: "/whoami", method: .get, headers: [HTTPField.Name("traceparent")!: "garbage"]) { response in
                let returned = try #require(response.headers[HTTPField.Name("traceparent")!].flatMap(TraceContext.init(traceparent:)))
                #expect(returned.traceID.count == 32)
            }
        }
    }

    /// With tracing on, a new trace is kept with the configured ratio and marked unsampled
    /// otherwise, so the next hops drop it too; a caller's flag is kept either way. (No tracer
    /// is installed in this process, so no span is exported: the sampling decision is what is
    /// tested; the spans themselves by `ObservabilityProcessTests`.)
    @Test func samplingFollowsTheRatioForNewTracesAndTheCallerForItsOwn() async throws {
        func flags(ratio: String?, parent: String?) async throws -> [Bool] {
            var environment = ["CONDUIT_GATEWAY_PORT": "0"]
            if let ratio { environment["CONDUIT_OTLP_ENDPOINT"] = "http://127.0.0.1:9"; environment["CONDUIT_TRACE_SAMPLE_RATIO"] = ratio }
            let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(environment))
            let router = makeConduitRouter(configuration: configuration, registry: PrometheusCollectorRegistry(), readiness: [])
            router.get("/whoami") { _, context in context.trace.traceparent }
            return try await Application(router: router).test(.router) { client in
                var sampled: [Bool] = []
                for _ in 0..<20 {
                    let headers: HTTPFields = parent.map { [HTTPField.Name("traceparent")!: $0] } ?? [:]
                    let response = try await client.execute(uri: "/whoami", method: .get, headers: headers)
                    let trace = try #require(TraceContext(traceparent: String(buffer: response.body)))
                    #expect(response.headers[HTTPField.Name("traceparent")!] == trace.traceparent)
                    sampled.append(trace.sampled)
                }
                return sampled
            }
        }
        #expect(try await flags(ratio: nil, parent: nil).allSatisfy { $0 })
        #expect(try await flags(ratio: "0", parent: nil).allSatisfy { !$0 })
        #expect(try await flags(ratio: "0", parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").allSatisfy { $0 })
        #expect(try await flags(ratio: "1", parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").allSatisfy { !$0 })
    }

    @Test func errorsBecomeTheOpenAIEnvelope() async throws {
        try await Self.makeApp().test(.router) { client in
            try await client.execute(uri: "/no/such/path", method: .get) { response in
                #expect(response.status == .notFound)
                #expect((try? Self.envelope(response.body))?.error.code == "not_found")
            }
            try await client.execute(uri: "/boom", method: .get) { response in
                #expect(response.status == .internalServerError)
                let envelope = try Self.envelope(response.body)
                #expect(envelope.error.type == "server_error")
                #expect(!envelope.error.message.contains("Failure"))
            }
            try await client.execute(uri: "/denied", method: .get) { response in
                #expect(response.status == .forbidden)
                #expect((try? Self.envelope(response.body))?.error.type == "permission_error")
            }
        }
    }

    @Test func badBodiesGetAnActionableFourHundred() async throws {
        try await Self.makeApp().test(.router) { client in
            try await client.execute(uri: "/chat", method: .post, body: ByteBuffer(string: "{not json")) { response in
                #expect(response.status == .badRequest)
                let envelope = try Self.envelope(response.body)
                #expect(envelope.error.type == "invalid_request_error")
                #expect(envelope.error.message.contains("not valid JSON"))
            }
            try await client.execute(uri: "/chat", method: .post, body: ByteBuffer(string: #"{"messages":[]}"#)) { response in
                #expect(response.status == .badRequest)
                let envelope = try Self.envelope(response.body)
                #expect(envelope.error.message.contains("'model'"))
                #expect(envelope.error.param == "model")
            }
            try await client.execute(uri: "/chat", method: .post, body: ByteBuffer(string: #"{"model":5,"messages":[]}"#)) { response in
                #expect(response.status == .badRequest)
                #expect((try? Self.envelope(response.body))?.error.message.contains("expected a string") == true)
            }
            try await client.execute(uri: "/chat", method: .post, body: ByteBuffer(bytes: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D])) { response in
                #expect(response.status == .badRequest)
            }
            let large = ByteBuffer(string: #"{"model":""# + String(repeating: "x", count: 5 * 1024 * 1024) + #"","messages":[]}"#)
            try await client.execute(uri: "/chat", method: .post, body: large) { response in
                #expect(response.status == .contentTooLarge)
                #expect((try? Self.envelope(response.body))?.error.code == "payload_too_large")
            }
            try await client.execute(uri: "/chat", method: .post, body: ByteBuffer(string: #"{"model":"m","messages":[]}"#)) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "m")
            }
        }
    }

    @Test func metricsCountRequestsPerRouteAndStatus() async throws {
        let registry = PrometheusCollectorRegistry()
        try await Self.makeApp(registry: registry).test(.router) { client in
            for _ in 0..<3 { try await client.execute(uri: "/healthz", method: .get) { _ in } }
            try await client.execute(uri: "/boom", method: .get) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                let text = String(buffer: response.body)
                #expect(text.contains(#"conduit_http_requests_total{service="gateway",route="/healthz",method="GET",status="200"} 3"#))
                #expect(text.contains(#"conduit_http_requests_total{service="gateway",route="/boom",method="GET",status="500"} 1"#))
                #expect(text.contains("conduit_http_request_duration_seconds_bucket"))
            }
        }
    }

    /// Lets `/stream` finish (it holds its last bytes until then).
    static let streamReleased = Locked(false)

    /// A stream counts as in flight until its last byte, not just until its head; a request
    /// whose handler throws stops counting at once.
    @Test func requestsInFlightCountStreamsToTheirEnd() async throws {
        let registry = PrometheusCollectorRegistry()
        try await Self.makeApp(registry: registry).test(.live) { client in
            let port = try #require(client.port)
            // On a connection of its own: the test client's one connection is busy with the stream.
            func inFlight() async throws -> String? {
                let answer = try await RawHTTP.exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return answer.split(separator: "\n").first { $0.hasPrefix("conduit_http_requests_in_flight{") }.map(String.init)
            }
            try await client.execute(uri: "/boom", method: .get) { _ in }
            let stream = Task { try await client.execute(uri: "/stream", method: .get) { String(buffer: $0.body) } }
            // The stream and this metrics request itself, while the stream is held open.
            let counted = try await eventually(within: .seconds(20)) {
                try await inFlight() == #"conduit_http_requests_in_flight{service="gateway"} 2.0"#
            }
            #expect(counted)
            Self.streamReleased.withLock { $0 = true }
            let streamed = try await stream.value
            #expect(streamed == "first last")
            let after = try await inFlight()
            #expect(after == #"conduit_http_requests_in_flight{service="gateway"} 1.0"#)
        }
    }

    @Test func readinessReportsEachDependency() async throws {
        let healthy = ReadinessCheck(name: "postgres") {}
        let broken = ReadinessCheck(name: "redis") { throw TimeoutError() }
        try await Self.makeApp(readiness: [healthy]).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains(#""postgres":"ok""#))
            }
        }
        try await Self.makeApp(readiness: [healthy, broken]).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let text = String(buffer: response.body)
                #expect(text.contains(#""redis":"timed out""#))
                #expect(text.contains(#""status":"not_ready""#))
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func aHangingDependencyTimesOut() async throws {
        let hanging = ReadinessCheck(name: "kafka") { try await Task.sleep(for: .seconds(60)) }
        try await Self.makeApp(readiness: [hanging]).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
        }
    }
}

extension RouterTests {
    /// Requests the HTTP parser refuses still get the error envelope, then the connection closes.
    @Test func malformedHTTPGetsTheEnvelope() async throws {
        try await Self.makeApp().test(.live) { client in
            let port = try #require(client.port)
            let requests = [
                "GET /whoami HTTP/1.1\r\nHost: x\r\nX-Bad\u{1}Name: 1\r\n\r\n",
                "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
                "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                "BREW /whoami HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            for request in requests {
                let answer = try await RawHTTP.exchange(port: port, request)
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(request.debugDescription): \(answer)")
                let body = try #require(answer.components(separatedBy: "\r\n\r\n").last, "\(answer)")
                let envelope = try JSONDecoder().decode(ErrorEnvelope.self, from: Data(body.utf8))
                #expect(envelope.error.type == "invalid_request_error")
                #expect(envelope.error.code == "malformed_request")
            }
            // And the server goes on serving well-formed requests.
            #expect(try await client.execute(uri: "/whoami", method: .get).status == .ok)
        }
    }
}

extension RouterTests {
    /// A dependency check stuck in a call that ignores cancellation (as a blocking libpq call
    /// would) cannot hold `/readyz` past its own timeout.
    @Test func readyzAnswersWithinItsTimeoutWhateverHangs() async throws {
        let stuck = ReadinessCheck(name: "stuck") {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    // Far longer than the check's limit: waiting for it would show plainly, even on
                    // a starved machine where the 3 s timer itself fires late.
                    Thread.sleep(forTimeInterval: 90)
                    continuation.resume()
                }
            }
        }
        try await Self.makeApp(readiness: [stuck, ReadinessCheck(name: "fine") {}]).test(.router) { client in
            let started = ContinuousClock.now
            let response = try await client.execute(uri: "/readyz", method: .get)
            #expect(ContinuousClock.now - started < .seconds(45))
            #expect(response.status == .serviceUnavailable)
            let body = String(buffer: response.body)
            #expect(body.contains(#""stuck":"timed out""#) && body.contains(#""fine":"ok""#), "\(body)")
        }
    }
}
