import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Testing
import TestSupport

/// Each service binary, started as `make up` starts it, against the test stack.
@Suite(.timeLimit(.minutes(3)))
struct ServiceProcessTests {
    static let services = ["gateway", "orchestrator", "embedder", "retriever", "cost-service", "prompt-registry", "metrics-exporter"]

    static func portKey(of service: String) -> String {
        "CONDUIT_" + service.uppercased().replacingOccurrences(of: "-", with: "_") + "_PORT"
    }

    static func port(of service: String) -> Int {
        Int(ProcessInfo.processInfo.environment[portKey(of: service)] ?? "") ?? 18080 + services.firstIndex(of: service)!
    }

    /// A model catalog in `directory` with one model, `m`, served by the OpenAI-compatible
    /// server at `upstream` ($1 / $2 per million tokens); its path.
    static func catalog(_ directory: String, upstream: String) throws -> String {
        let path = TestEnvironment.scratchDirectory(directory) + "/models.yaml"
        try """
            models:
              - name: m
                owned_by: tests
                deployments:
                  - id: m-local
                    provider: openai
                    model: m
                    base_url: \(upstream)/v1
                    context_window: 4096
                    price_per_million: {input: 1, output: 2}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A model catalog with one model, `scripted`, served by the OpenAI-compatible server at
    /// `upstream` at `input` / `output` USD per million tokens (and `tier`, when given); its path.
    static func scriptedCatalog(_ directory: String, upstream: String, input: Double, output: Double, tier: String? = nil) throws -> String {
        let path = TestEnvironment.scratchDirectory(directory) + "/models-\(UUID().uuidString.prefix(6)).yaml"
        try """
            models:
              - name: scripted
                deployments:
                  - {id: scripted, provider: openai, model: scripted, base_url: "\(upstream)/v1", context_window: 8192, max_tokens: 256,
                     \(tier.map { "tier: \($0), " } ?? "")price_per_million: {input: \(input), output: \(output)}}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A running service binary; stops it with SIGKILL if a test leaves it running.
    final class RunningService: Sendable {
        let process: ChildProcess
        let base: String
        let log: String
        let http = HTTPClient(logger: Logger(label: "client"))

        /// `portOffset` keeps two tests that run the same service at once apart.
        init(_ service: String, portOffset: Int = 0, extraEnvironment: [String: String] = [:]) throws {
            let port = ServiceProcessTests.port(of: service) + portOffset
            log = TestEnvironment.scratchDirectory("services") + "/\(service)-\(UUID().uuidString.prefix(6)).log"
            var environment = ProcessInfo.processInfo.environment
            environment["CONDUIT_DEBUG_ENDPOINTS"] = "1"
            environment["CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS"] = "7000"
            environment[ServiceProcessTests.portKey(of: service)] = String(port)
            // Each instance its own consumer group: members of one group joining at once stall Tansu's coordinator.
            environment["CONDUIT_METRICS_EXPORTER_GROUP"] = TestEnvironment.uniqueName("metrics-exporter")
            environment["CONDUIT_RETRIEVER_GROUP"] = TestEnvironment.uniqueName("retriever")
            environment["CONDUIT_EMBEDDER_GROUP"] = TestEnvironment.uniqueName("embedder")
            environment["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("gateway-audit")
            environment["CONDUIT_COST_SERVICE_GROUP"] = TestEnvironment.uniqueName("cost-service")
            environment["CONDUIT_PROMPT_REGISTRY_GROUP"] = TestEnvironment.uniqueName("prompt-registry")
            if service == "orchestrator" {
                // Most tests run no cost-service: there, budgets are not what is tested, and nothing
                // answers (port 9) rather than a stack that may run on the default ports. The tests of
                // budgets give their cost-service's URL and keep the default, `refuse`.
                environment["CONDUIT_COST_SERVICE_URL"] = "http://127.0.0.1:9"
                environment["CONDUIT_BUDGET_UNAVAILABLE"] = "allow"
            }
            environment.merge(extraEnvironment) { _, new in new }
            process = try ChildProcess(executable: TestEnvironment.binDirectory.appendingPathComponent(service).path, arguments: [], environment: environment, outputPath: log)
            base = "http://127.0.0.1:\(port)"
        }

        func get(_ path: String, timeout: Duration = .seconds(10)) async throws -> (status: Int, body: String) {
            let response = try await http.execute(HTTPRequest(url: base + path, timeout: timeout))
            return (response.status, String(decoding: try await response.body.collect(upTo: 1 << 22), as: UTF8.self))
        }

        func post(_ path: String, _ json: String, headers: [(name: String, value: String)] = []) async throws -> (status: Int, body: String) {
            let response = try await http.execute(HTTPRequest(
                method: "POST", url: base + path, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8), timeout: .seconds(30)))
            return (response.status, String(decoding: try await response.body.collect(upTo: 1 << 22), as: UTF8.self))
        }

        func waitUntilReady() async throws {
            let ready = try await eventually(within: .seconds(90)) {
                if process.hasExited { return true }
                return try await get("/readyz").status == 200
            }
            if process.hasExited {
                Issue.record("exited before ready; log: \(logText.suffix(2000))")
                throw CancellationError()
            }
            if !ready {
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? ""
                Issue.record("not ready; readyz says \((try? await get("/readyz").body) ?? "nothing"); log: \(tail)")
            }
        }

        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    /// An embedder consuming `requests` and producing `chunks`, and a retriever consuming
    /// `chunks` that embeds query text with that embedder: the indexing path on its own topics.
    static func indexingServices(portOffset: Int, requests: String, chunks: String) throws -> (embedder: RunningService, retriever: RunningService) {
        let embedder = try RunningService("embedder", portOffset: portOffset, extraEnvironment: [
            "CONDUIT_EMBEDDER_REQUESTS_TOPIC": requests, "CONDUIT_EMBEDDER_CHUNKS_TOPIC": chunks,
        ])
        let retriever = try RunningService("retriever", portOffset: portOffset, extraEnvironment: [
            "CONDUIT_RETRIEVER_CHUNKS_TOPIC": chunks, "CONDUIT_EMBEDDER_URL": embedder.base,
        ])
        return (embedder, retriever)
    }

    @Test(arguments: services)
    func bootsAnswersHealthAndDrainsOnSIGTERM(service: String) async throws {
        let running = try RunningService(service)
        defer { running.process.signal(SIGKILL) }
        try await running.waitUntilReady()

        #expect(try await running.get("/healthz").status == 200)
        let metrics = try await running.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("conduit_http_requests_total"))
        let metricsFile = TestEnvironment.scratchDirectory("metrics") + "/\(service).prom"
        try metrics.body.write(toFile: metricsFile, atomically: true, encoding: .utf8)
        let promtool = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "promtool check metrics < '\(metricsFile)'"], outputPath: metricsFile + ".check")
        let promtoolStatus = await promtool.wait()
        #expect(promtoolStatus == 0, "promtool: \((try? String(contentsOfFile: metricsFile + ".check", encoding: .utf8)) ?? "")")

        // A request in flight when SIGTERM arrives is completed before the process exits 0.
        let slow = Task { try await running.get("/internal/sleep?ms=1500") }
        try await Task.sleep(for: .milliseconds(400))
        running.process.signal(SIGTERM)
        let answer = try await slow.value
        #expect(answer.status == 200)
        #expect(answer.body == "slept 1500")
        let status = await running.process.wait()
        #expect(status == 0, "exit status \(status); log: \(running.logText.suffix(3000))")
        await #expect(throws: HTTPClientError.self) { try await running.get("/healthz", timeout: .seconds(2)) }
        await running.http.shutdown()

        // Every log line is JSON, and request lines carry request and trace ids.
        let lines = running.logText.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
        let requestLine = lines.first { $0.contains(#""route":"/internal/sleep""#) }
        #expect(requestLine?.contains("request_id") == true)
        #expect(requestLine?.contains("trace_id") == true)
    }

    @Test func servicesMigrateTheirOwnSchemas() async throws {
        let running = try RunningService("gateway", portOffset: 100)
        defer { running.process.signal(SIGKILL) }
        try await running.waitUntilReady()
        let postgres = PostgresClient(configuration: .init(port: TestEnvironment.postgresPort), logger: Logger(label: "check"))
        defer { postgres.shutdown() }
        let versions = try await postgres.query("SELECT version FROM gateway.schema_migrations ORDER BY 1").map { try $0.decode(Int.self, at: 0) }
        #expect(versions == [1, 2, 3, 4, 5, 6, 7])
        let columns = try await postgres.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'gateway' AND table_name = 'api_keys' AND column_name = 'chat_defaults'")
        #expect(columns.count == 1)
        let tables = try await postgres.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'gateway' ORDER BY 1")
        #expect(try tables.map { try $0.decode(String.self, at: 0) } == ["api_keys", "schema_migrations", "teams", "tenants", "users"])
        running.process.signal(SIGTERM)
        #expect(await running.process.wait() == 0)
        await running.http.shutdown()
    }

    @Test func metricsExporterCountsEventsAndSkipsMalformedOnes() async throws {
        let running = try RunningService("metrics-exporter", portOffset: 100)
        defer { running.process.signal(SIGKILL) }
        try await running.waitUntilReady()
        let producer = KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: TestEnvironment.kafkaBrokers)), logger: Logger(label: "p"))
        let model = TestEnvironment.uniqueName("model")
        let event = UsageEvent(requestID: UUID().uuidString, tenant: "t", kind: "chat", model: model, promptTokens: 1, completionTokens: 2, status: "ok", timestamp: Date())
        try await producer.send(topic: KafkaTopic.usage, key: event.requestID, value: Array(try EventCoding.encoder().encode(event)))
        try await producer.send(topic: KafkaTopic.usage, key: "bad", value: Array("not json".utf8))
        await producer.shutdown()
        let counted = try await eventually(within: .seconds(60)) {
            let text = try await running.get("/metrics").body
            return text.contains(#"conduit_events_consumed_total{topic="conduit.usage",kind="chat"}"#)
                && text.contains(#"conduit_events_malformed_total{topic="conduit.usage"}"#)
                && text.contains(#"llm_requests_total{model="\#(model)",provider="none",status="ok"} 1"#)
                && text.contains(#"llm_tokens_total{model="\#(model)",kind="completion"} 2"#)
        }
        #expect(counted)
        running.process.signal(SIGTERM)
        #expect(await running.process.wait() == 0)
        await running.http.shutdown()
    }
}
