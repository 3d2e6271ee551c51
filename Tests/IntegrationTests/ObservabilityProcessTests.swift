import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Testing
import TestSupport

/// Observability over the whole stack: every service process with tracing on (to a real OTLP
/// collector, rotel) and scraped by a real Prometheus; chat (plain, streamed, cached, RAG),
/// embeddings, indexing (one broken event among them), feedback and a budget through the
/// gateway. Then: the exporter's counters equal the usage events on the topic; 10,000 events of
/// distinct users and keys add no series; every dashboard query returns data from Prometheus;
/// the alert rules' unit tests pass; the RAG chat is one trace whose spans from at least four
/// services nest.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct ObservabilityProcessTests {
    static let offset = 250
    static let prometheusPort = 19490
    static let collectorPort = 19418

    /// One span as the collector's debug log prints it.
    struct Span: Hashable {
        var service: String
        var traceID: String
        var parentID: String
        var id: String
        var name: String
        var text: String
    }

    /// Spans parsed from rotel's `--debug-log traces --debug-log-verbosity detailed` output.
    static func spans(_ log: String) -> [Span] {
        var spans: [Span] = []
        for resource in log.components(separatedBy: "ResourceSpans #").dropFirst() {
            let service = resource.components(separatedBy: "service.name: Str(").dropFirst().first?.prefix { $0 != ")" } ?? ""
            for block in resource.components(separatedBy: "\nSpan #").dropFirst() {
                func field(_ name: String) -> String {
                    let line = block.components(separatedBy: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name) } ?? ""
                    return line.components(separatedBy: ": ").dropFirst().joined(separator: ": ").trimmingCharacters(in: .whitespaces)
                }
                spans.append(Span(service: String(service), traceID: field("Trace ID"), parentID: field("Parent ID"), id: field("ID "), name: field("Name"), text: block))
            }
        }
        return spans
    }

    /// Series lines (not comments) of a Prometheus exposition.
    static func series(_ exposition: String) -> [Substring] {
        exposition.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
    }

    /// The sum of every sample of `metric` whose labels contain all of `labels`.
    static func total(_ exposition: String, _ metric: String, _ labels: [String] = []) -> Double {
        series(exposition).filter { line in
            (line.hasPrefix(metric + "{") || line.hasPrefix(metric + " ")) && labels.allSatisfy { line.contains($0) }
        }.reduce(0) { $0 + (Double($1.split(separator: " ").last ?? "") ?? 0) }
    }

    static func prometheusConfig(_ directory: String) throws -> String {
        let rules = TestEnvironment.packageRoot.appendingPathComponent("deploy/prometheus/rules").path
        let targets = ServiceProcessTests.services.map { service in
            """
                  - targets: ["127.0.0.1:\(ServiceProcessTests.port(of: service) + offset)"]
                    labels: {service: \(service)}
            """
        }.joined(separator: "\n")
        let path = directory + "/prometheus.yml"
        try """
        global: {scrape_interval: 1s, evaluation_interval: 5s}
        rule_files: ["\(rules)/*.yml"]
        scrape_configs:
          - job_name: conduit
            honor_labels: true
            static_configs:
        \(targets)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func program(_ name: String, environmentKey: String) -> String {
        if let configured = ProcessInfo.processInfo.environment[environmentKey], !configured.isEmpty { return configured }
        for directory in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        return name
    }

    /// Runs a program to its end; its exit status and output.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let output = TestEnvironment.scratchDirectory("observability") + "/run-\(UUID().uuidString.prefix(6)).log"
        let process = try ChildProcess(executable: executable, arguments: arguments, outputPath: output)
        let status = await process.wait()
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    @Test func metricsDashboardsAlertsAndTracesFromTheRunningStack() async throws {
        let scratch = TestEnvironment.scratchDirectory("observability-\(UUID().uuidString.prefix(6))")
        let model = try GroundedChatProcessTests.ScriptedModel()
        defer { model.server.stop() }
        let catalog = try ServiceProcessTests.scriptedCatalog("observability", upstream: model.server.baseURL, input: 1000, output: 2000, tier: "standard")
        let topics = (usage: TestEnvironment.uniqueName("conduit.test.usage"), audit: TestEnvironment.uniqueName("conduit.test.audit"),
                      alerts: TestEnvironment.uniqueName("conduit.test.alerts"), requests: TestEnvironment.uniqueName("conduit.test.requests"),
                      chunks: TestEnvironment.uniqueName("conduit.test.chunks"), dlq: TestEnvironment.uniqueName("conduit.test.dlq"))

        // The collector and Prometheus.
        let rotel = Self.program("rotel-agent", environmentKey: "CONDUIT_TEST_ROTEL")
        let traces = scratch + "/collector.log"
        let collector = try ChildProcess(executable: rotel, arguments: [
            "start", "--otlp-http-endpoint", "127.0.0.1:\(Self.collectorPort)", "--otlp-grpc-endpoint", "127.0.0.1:\(Self.collectorPort - 1)",
            "--exporter", "blackhole", "--debug-log", "traces", "--debug-log-verbosity", "detailed",
        ], outputPath: traces)
        defer { collector.signal(SIGKILL) }
        let prometheus = try ChildProcess(executable: Self.program("prometheus", environmentKey: "CONDUIT_TEST_PROMETHEUS"), arguments: [
            "--config.file=\(try Self.prometheusConfig(scratch))", "--storage.tsdb.path=\(scratch)/tsdb",
            "--web.listen-address=127.0.0.1:\(Self.prometheusPort)", "--log.level=warn",
        ], outputPath: scratch + "/prometheus.log")
        defer { prometheus.signal(SIGKILL) }

        // Every service, tracing every request, on its own topics.
        let url = { (service: String) in "http://127.0.0.1:\(ServiceProcessTests.port(of: service) + Self.offset)" }
        let common = [
            "CONDUIT_OTLP_ENDPOINT": "http://127.0.0.1:\(Self.collectorPort)", "CONDUIT_TRACE_SAMPLE_RATIO": "1", "CONDUIT_KAFKA_LAG_INTERVAL_MS": "1000",
            "CONDUIT_ORCHESTRATOR_URL": url("orchestrator"), "CONDUIT_EMBEDDER_URL": url("embedder"), "CONDUIT_RETRIEVER_URL": url("retriever"),
            "CONDUIT_COST_SERVICE_URL": url("cost-service"), "CONDUIT_PROMPT_REGISTRY_URL": url("prompt-registry"),
        ]
        let specific: [String: [String: String]] = [
            "embedder": ["CONDUIT_EMBEDDER_REQUESTS_TOPIC": topics.requests, "CONDUIT_EMBEDDER_CHUNKS_TOPIC": topics.chunks,
                         "CONDUIT_EMBEDDER_DLQ_TOPIC": topics.dlq, "CONDUIT_EMBEDDER_USAGE_TOPIC": topics.usage],
            "retriever": ["CONDUIT_RETRIEVER_CHUNKS_TOPIC": topics.chunks, "CONDUIT_RETRIEVER_DLQ_TOPIC": topics.dlq],
            "cost-service": ["CONDUIT_COST_SERVICE_USAGE_TOPIC": topics.usage, "CONDUIT_COST_SERVICE_ALERTS_TOPIC": topics.alerts,
                             "CONDUIT_COST_SERVICE_GROUP": TestEnvironment.uniqueName("cost"), "CONDUIT_COST_SERVICE_DLQ_TOPIC": topics.dlq,
                             "CONDUIT_BUDGET_RECONCILE_S": "1"],
            "prompt-registry": ["CONDUIT_PROMPT_REGISTRY_USAGE_TOPIC": topics.usage, "CONDUIT_PROMPT_REGISTRY_GROUP": TestEnvironment.uniqueName("prompts")],
            "orchestrator": ["CONDUIT_MODEL_CATALOG": catalog, "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": topics.usage, "CONDUIT_CACHE_ENABLED": "true"],
            "gateway": ["CONDUIT_ADMIN_KEY": "cdt-obs-\(UUID().uuidString)", "CONDUIT_ADMIN_TENANT": TestEnvironment.uniqueName("root"),
                        "CONDUIT_GATEWAY_INDEXING_TOPIC": topics.requests, "CONDUIT_GATEWAY_AUDIT_TOPIC": topics.audit],
            "metrics-exporter": ["CONDUIT_METRICS_EXPORTER_USAGE_TOPIC": topics.usage, "CONDUIT_METRICS_EXPORTER_AUDIT_TOPIC": topics.audit,
                                 "CONDUIT_METRICS_EXPORTER_ALERTS_TOPIC": topics.alerts],
        ]
        var running: [String: ServiceProcessTests.RunningService] = [:]
        for service in ServiceProcessTests.services {
            running[service] = try ServiceProcessTests.RunningService(
                service, portOffset: Self.offset, extraEnvironment: common.merging(specific[service] ?? [:]) { _, new in new })
        }
        defer { for service in running.values { service.process.signal(SIGKILL) } }
        for service in running.values { try await service.waitUntilReady() }
        let gateway = running["gateway"]!.base
        let exporter = running["metrics-exporter"]!
        let root = specific["gateway"]!["CONDUIT_ADMIN_KEY"]!
        let tenant = TestEnvironment.uniqueName("obs")
        #expect(try await GroundedChatProcessTests.call(gateway, "POST", "/v1/tenants", key: root, json: #"{"name":"\#(tenant)","id":"\#(tenant)"}"#).status == 201)
        let made = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/keys", key: root, json: #"{"tenant":"\#(tenant)","role":"admin","name":"obs"}"#)
        let key = try #require(made.json?["key"]?.stringValue, "\(made.body)")

        // Traffic: documents (and one broken event), embeddings, chat plain / streamed / cached / RAG, feedback.
        for (index, text) in ["The Zephyr X2 headphones have a two-year warranty.", "Returns are accepted within thirty days."].enumerated() {
            let indexed = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/documents", key: key,
                                                                  json: #"{"collection":"kb","doc_id":"d\#(index)","text":"\#(text)"}"#)
            #expect(indexed.status == 202, "\(indexed.body)")
        }
        let producer = KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: TestEnvironment.kafkaBrokers, clientID: "obs-test")), logger: Logger(label: "obs"))
        let producing = Task { try await producer.run() }
        defer { producing.cancel() }
        _ = try await producer.send(topic: topics.requests, key: Array("broken".utf8), value: Array("not an indexing request".utf8))
        _ = try await producer.send(topic: topics.usage, key: Array("bad".utf8), value: Array(#"{"no":"schema version"}"#.utf8))
        #expect(try await eventually(within: .seconds(90)) {
            try await GroundedChatProcessTests.call(gateway, "POST", "/v1/search", key: key, json: #"{"collection":"kb","query":"warranty","mode":"keyword","top_k":3}"#)
                .body.contains("Zephyr")
        })
        let embedded = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/embeddings", key: key, json: #"{"model":"all-minilm-l6-v2","input":"observability"}"#)
        #expect(embedded.status == 200, "\(embedded.body)")
        let plain = try await GroundedChatProcessTests.chat(gateway, key: key, [("user", "Hello there")])
        #expect(plain.status == 200, "\(plain.body)")
        let streamed = try await GroundedChatProcessTests.chat(gateway, key: key, [("user", "Stream this please")], stream: true)
        #expect(streamed.status == 200 && streamed.body.contains("[DONE]"), "\(streamed.body)")
        let cacheable = try await GroundedChatProcessTests.chat(gateway, key: key, [("user", "What is the capital of cache land?")])
        #expect(cacheable.status == 200)
        #expect(try await eventually(within: .seconds(30)) {
            try await GroundedChatProcessTests.chat(gateway, key: key, [("user", "What is the capital of cache land?")]).json?["conduit"]?["cache"]?["hit"] == true
        })
        let rag = try await GroundedChatProcessTests.chat(gateway, key: key, [("user", "How long is the warranty on the Zephyr X2 headphones?")],
                                                          conduit: #"{"rag":{"collection":"kb","top_k":2}}"#)
        #expect(rag.status == 200 && rag.body.contains("[1]"), "\(rag.body)")
        let ragTrace = try #require(rag.header("traceparent").flatMap { TraceContext(traceparent: $0) })
        let requestID = try #require(plain.header("x-request-id"))
        let feedback = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/feedback", key: key, json: #"{"request_id":"\#(requestID)","score":0.8,"thumbs":"up"}"#)
        #expect(feedback.status == 201, "\(feedback.body)")
        // A budget already nearly spent: the cost-service's next pass alerts on it.
        let budget = try await GroundedChatProcessTests.call(gateway, "POST", "/v1/budgets", key: key,
                                                             json: #"{"scope":{"tenant":true},"period":"month","limit_usd":0.05,"name":"obs"}"#)
        #expect(budget.status == 201, "\(budget.body)")
        for _ in 0..<3 { _ = try await GroundedChatProcessTests.chat(gateway, key: key, [("user", "Spend a little more \(UUID().uuidString)")]) }

        // The exporter counts what is on the topic, no more and no less.
        var metrics = ""
        var consumed = 0.0
        #expect(try await eventually(within: .seconds(60)) {
            let before = Self.total(try await exporter.get("/metrics").body, "conduit_events_consumed_total", [#"topic="\#(topics.usage)""#])
            try await Task.sleep(for: .seconds(3))
            metrics = try await exporter.get("/metrics").body
            consumed = Self.total(metrics, "conduit_events_consumed_total", [#"topic="\#(topics.usage)""#])
            return consumed >= 9 && consumed == before && metrics.contains("llm_budget_utilization_ratio{")
        }, "the exporter counted \(consumed) usage events")
        let onTopic = try await TestEnvironment.readMessages(topics.usage, count: Int(consumed) + 1)
        let seen = Set(onTopic.map { "\($0.partition)/\($0.offset)" })
        let extra = try await TestEnvironment.firstMessage(topics.usage, within: .seconds(5)) { !seen.contains("\($0.partition)/\($0.offset)") }
        #expect(extra == nil, "an event the exporter did not count")
        let events = onTopic.compactMap { try? EventCoding.decoder().decode(UsageEvent.self, from: Data($0.value)) }
        #expect(events.count == onTopic.count - 1)
        #expect(Self.total(metrics, "conduit_events_malformed_total", [#"topic="\#(topics.usage)""#]) == 1)
        #expect(Self.total(metrics, "llm_requests_total") == Double(events.count))
        for status in Set(events.map(\.status)) {
            #expect(Self.total(metrics, "llm_requests_total", [#"status="\#(status)""#]) == Double(events.filter { $0.status == status }.count), "status \(status)")
        }
        #expect(Self.total(metrics, "llm_cache_hits_total") == Double(events.filter { $0.cacheHit == true }.count))
        #expect(Self.total(metrics, "llm_rag_answers_total") == Double(events.filter { $0.citations != nil }.count))
        let tokens = events.reduce(0) { $0 + $1.promptTokens }
        #expect(Self.total(metrics, "llm_tokens_total", [#"kind="prompt""#]) == Double(tokens))
        let cost = events.compactMap(\.costUSD).reduce(0, +)
        #expect(abs(Self.total(metrics, "llm_cost_dollars_total") - cost) < 1e-9)

        // 10,000 events from distinct users and keys: not one series more.
        let seriesBefore = Self.series(metrics).filter { !$0.hasPrefix("conduit_kafka_consumer_lag") && !$0.hasPrefix("conduit_http") }.count
        let encoder = EventCoding.encoder()
        for batch in stride(from: 0, to: 10_000, by: 500) {
            _ = try await producer.send(batch: try (batch..<batch + 500).map { index in
                var event = UsageEvent(requestID: "r\(index)", tenant: tenant, kind: "chat", model: "scripted", promptTokens: 1, completionTokens: 1,
                                       status: "ok", timestamp: Date())
                event.servedModel = "scripted"
                event.provider = "openai"
                event.keyID = "key-\(index)"
                event.user = "user-\(index)"
                return KafkaOutgoingMessage(topic: topics.usage, key: Array(event.requestID.utf8), value: Array(try encoder.encode(event)))
            })
        }
        #expect(try await eventually(within: .seconds(60)) {
            metrics = try await exporter.get("/metrics").body
            return Self.total(metrics, "conduit_events_consumed_total", [#"topic="\#(topics.usage)""#]) == consumed + 10_000
        })
        #expect(Self.series(metrics).filter { !$0.hasPrefix("conduit_kafka_consumer_lag") && !$0.hasPrefix("conduit_http") }.count == seriesBefore)
        #expect(!metrics.contains("user-") && !metrics.contains("key-1"))

        // Every dashboard query returns data from Prometheus (a few scrapes after the traffic).
        try await Task.sleep(for: .seconds(5))
        let python = ProcessInfo.processInfo.environment["CONDUIT_TEST_DEPLOY_PYTHON"] ?? "python3"
        let checker = TestEnvironment.packageRoot.appendingPathComponent("deploy/dev/check-dashboards.py").path
        var dashboards: (status: Int32, output: String) = (1, "")
        #expect(try await eventually(within: .seconds(60)) {
            dashboards = try await Self.run(python, [checker, "--prometheus", "http://127.0.0.1:\(Self.prometheusPort)"])
            return dashboards.status == 0
        }, "\(dashboards.output)")
        #expect(dashboards.output.contains("dashboards=12"))

        // The alert rules' unit tests.
        let rules = TestEnvironment.packageRoot.appendingPathComponent("deploy/prometheus/tests")
        let files = try FileManager.default.contentsOfDirectory(atPath: rules.path).filter { $0.hasSuffix(".yml") }.sorted().map { rules.appendingPathComponent($0).path }
        #expect(files.count >= 2)
        let promtool = try await Self.run(Self.program("promtool", environmentKey: "CONDUIT_TEST_PROMTOOL"), ["test", "rules"] + files)
        #expect(promtool.status == 0, "\(promtool.output)")

        // The RAG chat: one trace, spans of at least four services, each under its parent.
        var trace: [Span] = []
        #expect(try await eventually(within: .seconds(30)) {
            trace = Self.spans((try? String(contentsOfFile: traces, encoding: .utf8)) ?? "").filter { $0.traceID == ragTrace.traceID }
            return Set(trace.map(\.service)).isSuperset(of: ["gateway", "orchestrator", "retriever", "embedder"]) && trace.contains { $0.name.hasPrefix("chat ") }
        }, "spans of the RAG trace: \(trace.map { "\($0.service) \($0.name)" })")
        let ids = Set(trace.map(\.id))
        let roots = trace.filter { !ids.contains($0.parentID) }
        #expect(roots.count == 1 && roots.first?.service == "gateway", "roots: \(roots.map { "\($0.service) \($0.name) parent=\($0.parentID)" })")
        let byID = Dictionary(trace.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let orchestratorSpan = trace.first { $0.service == "orchestrator" && $0.name == "/v1/chat/completions" }
        #expect(orchestratorSpan.flatMap { byID[$0.parentID]?.service } == "gateway")
        let modelCall = try #require(trace.first { $0.name.hasPrefix("chat ") })
        #expect(byID[modelCall.parentID]?.service == "orchestrator")
        #expect(modelCall.text.contains("gen_ai.usage.input_tokens") && modelCall.text.contains("gen_ai.response.finish_reasons"))
        #expect(!modelCall.text.contains("Zephyr X2"), "prompt text on a span without CONDUIT_TRACE_CONTENT")
        let search = trace.first { $0.service == "retriever" }
        #expect(search.flatMap { byID[$0.parentID]?.service } == "orchestrator")
    }
}
