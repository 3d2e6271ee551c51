import ConduitKafka
@testable import ConduitKit
import ConduitPostgres
import ConduitRedis
import Foundation
import Kafka
import Logging
import Postgres
import Redis
import Testing

struct ConfigurationTests {
    @Test func defaultsRunTheLocalStack() throws {
        let configuration = try ServiceConfiguration(service: .costService, environment: ConduitEnvironment([:]))
        #expect(configuration.port == 8084)
        #expect(try configuration.postgres.port == 55432)
        #expect(try configuration.redis.port == 56379)
        #expect(try configuration.kafka.bootstrapServers == "127.0.0.1:59092")
        #expect(configuration.serviceURLs[.gateway] == "http://127.0.0.1:8080")
        #expect(configuration.logLevel == .info)
    }

    @Test func environmentOverridesPerService() throws {
        let environment = ConduitEnvironment([
            "CONDUIT_COST_SERVICE_PORT": "9000",
            "CONDUIT_POSTGRES_PORT": "6000",
            "CONDUIT_ORCHESTRATOR_URL": "http://orchestrator:8081",
            "CONDUIT_LOG_LEVEL": "DEBUG",
        ])
        let configuration = try ServiceConfiguration(service: .costService, environment: environment)
        #expect(configuration.port == 9000)
        #expect(try configuration.postgres.port == 6000)
        #expect(configuration.serviceURLs[.orchestrator] == "http://orchestrator:8081")
        #expect(configuration.logLevel == .debug)
    }

    /// A service reads the settings of the infrastructure it uses when it builds its clients
    /// (`buildApplication`), so a bad value stops it at start, naming the variable.
    @Test func invalidValuesNameTheVariableButNotTheValue() throws {
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(["CONDUIT_POSTGRES_PORT": "hunter2"]))
        let error = #expect(throws: ConfigurationError.self) { try configuration.postgres }
        #expect(error?.description.contains("CONDUIT_POSTGRES_PORT") == true)
        #expect(error?.description.contains("hunter2") == false)
        let own = #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(["CONDUIT_GATEWAY_PORT": "hunter2"]))
        }
        #expect(own?.description.contains("CONDUIT_GATEWAY_PORT") == true)
        #expect(own?.description.contains("hunter2") == false)
    }

    @Test func traceparentParsing() {
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?.sampled == true)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
        #expect(TraceContext(traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01") == nil)
        #expect(TraceContext(traceparent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceparent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") == nil)
        let root = TraceContext.random()
        #expect(TraceContext(traceparent: root.traceparent) == root)
        #expect(root.child().traceID == root.traceID)
    }

    @Test func jsonLogLinesAreSingleValidObjects() throws {
        var pipe: [Int32] = [0, 0]
        #expect(Foundation.pipe(&pipe) == 0)
        var handler = JSONLogHandler(label: "svc", level: .info, fileDescriptor: pipe[1])
        handler[metadataKey: "request_id"] = "r1"
        var logger = Logger(label: "svc") { _ in handler }
        logger.logLevel = .info
        logger.debug("hidden")
        logger.info("hello \"world\"\nsecond line", metadata: ["trace_id": "abc", "n": .stringConvertible(5)])
        close(pipe[1])
        let output = FileHandle(fileDescriptor: pipe[0]).readDataToEndOfFile()
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "hello \"world\"\nsecond line")
        #expect(object["level"] as? String == "info")
        #expect(object["request_id"] as? String == "r1")
        #expect(object["trace_id"] as? String == "abc")
        #expect(object["n"] as? String == "5")
        #expect(object["ts"] is String)
    }

    @Test func jsonLogLinesEscapeEverythingAndKeepNestedMetadata() throws {
        let time = Date(timeIntervalSince1970: 1_795_336_558.123)
        let line = JSONLogHandler.line(
            time: time, level: .warning, label: "svc", message: "tab\tbell\u{07}quote\"back\\slash é 🚀",
            metadata: ["list": [.string("a"), .stringConvertible(2)], "map": ["k": "v\n"], "msg": "ignored"], source: "x")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        #expect(object["msg"] as? String == "tab\tbell\u{07}quote\"back\\slash é 🚀")
        #expect(object["ts"] as? String == "2026-11-22T08:35:58.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["list"] as? [String] == ["a", "2"])
        #expect((object["map"] as? [String: String])?["k"] == "v\n")
    }
}
