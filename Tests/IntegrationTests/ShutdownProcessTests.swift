import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Testing
import TestSupport

/// SIGTERM while an orchestrator process is busy: every request in flight is answered, and
/// every answered request's usage event is on the topic afterwards (the usage outbox drains
/// before the producer stops).
@Suite(.timeLimit(.minutes(4)))
struct ShutdownProcessTests {
    @Test func sigtermUnderLoadLosesNoUsageEvent() async throws {
        let received = Locked(0)
        let upstream = try TestHTTPServer { _, connection in
            received.withLock { $0 += 1 }
            Thread.sleep(forTimeInterval: 1.5)
            connection.respond(headers: ["Content-Type": "application/json"], body: Array(
                #"{"id":"c-1","object":"chat.completion","created":1,"model":"slow","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#.utf8))
        }
        let catalog = TestEnvironment.scratchDirectory("shutdown") + "/models-\(UUID().uuidString.prefix(6)).yaml"
        try """
        models:
          - name: slow
            deployments:
              - {id: slow, provider: openai, model: slow, base_url: "\(upstream.baseURL)/v1"}
        """.write(toFile: catalog, atomically: true, encoding: .utf8)
        let usageTopic = TestEnvironment.uniqueName("usage")
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: 120, extraEnvironment: [
            "CONDUIT_MODEL_CATALOG": catalog, "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": usageTopic, "CONDUIT_CACHE_ENABLED": "false",
        ])
        defer { orchestrator.process.signal(SIGKILL) }
        try await orchestrator.waitUntilReady()

        let count = 24
        let tenant = TestEnvironment.uniqueName("tenant")
        let requestIDs = (0..<count).map { "shutdown-\($0)-\(UUID().uuidString.prefix(6))" }
        let answers = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for requestID in requestIDs {
                    group.addTask {
                        let response = try await orchestrator.http.execute(HTTPRequest(
                            method: "POST", url: orchestrator.base + "/v1/chat/completions",
                            headers: [("Content-Type", "application/json")] + TestIdentity.headers(tenant: tenant, requestID: requestID),
                            body: Array(#"{"model":"slow","messages":[{"role":"user","content":"hi"}]}"#.utf8), timeout: .seconds(60)))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return response.status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        // Every request has reached the model; SIGTERM lands while all of them are in flight.
        #expect(try await eventually { received.withLock { $0 } == count })
        orchestrator.process.signal(SIGTERM)
        let statuses = try await answers.value
        #expect(statuses == Array(repeating: 200, count: count))
        #expect(await orchestrator.process.wait() == 0)

        let events = try await TestEnvironment.readMessages(usageTopic, count: count).map { try EventCoding.decoder().decode(UsageEvent.self, from: Data($0.value)) }
        #expect(Set(events.map(\.requestID)) == Set(requestIDs))
        #expect(Set(events.map(\.eventID)).count == count)
        #expect(events.allSatisfy { $0.tenant == tenant && $0.status == "ok" && $0.completionTokens == 2 })
        await orchestrator.http.shutdown()
    }
}
