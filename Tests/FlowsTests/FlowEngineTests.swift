import ConduitProtocol
import Flows
import Foundation
import Synchronization
import Testing

/// Executors for the tests: the caller is a string.
struct EchoExecutor: FlowExecutor {
    let name = "echo"
    func run(config: JSONValue, context: FlowStepContext<String>) async throws -> FlowStepOutput {
        FlowStepOutput(config["value"] ?? .null, costUSD: 0.001)
    }
}

/// Fails with `kind` until it has been called `failures` times for its step.
final class FlakyExecutor: FlowExecutor, Sendable {
    let name = "flaky"
    let calls = Mutex<[String: Int]>([:])

    func run(config: JSONValue, context: FlowStepContext<String>) async throws -> FlowStepOutput {
        let count = calls.withLock { calls in
            calls[context.step, default: 0] += 1
            return calls[context.step]!
        }
        let failures = config["failures"]?.intValue ?? 0
        if count <= failures { throw FlowStepError(kind: config["kind"]?.stringValue ?? "upstream_error", message: "failure \(count)") }
        return FlowStepOutput(.string("ok after \(count)"))
    }
}

/// Sleeps `ms`, counting how many sleep at once.
final class SleepExecutor: FlowExecutor, Sendable {
    let name = "sleep"
    let running = Mutex(0)
    let most = Mutex(0)

    func run(config: JSONValue, context: FlowStepContext<String>) async throws -> FlowStepOutput {
        let now = running.withLock { $0 += 1; return $0 }
        most.withLock { $0 = max($0, now) }
        defer { running.withLock { $0 -= 1 } }
        try await Task.sleep(for: .milliseconds(config["ms"]?.intValue ?? 10))
        return FlowStepOutput(config["value"] ?? .string(context.step))
    }
}

/// `flow`: runs another flow of `flows` by name.
struct NestedExecutor: FlowExecutor {
    let name = "flow"
    let flows: @Sendable () -> [String: FlowDefinition]

    func run(config: JSONValue, context: FlowStepContext<String>) async throws -> FlowStepOutput {
        guard let name = config["name"]?.stringValue, let flow = flows()[name] else { throw FlowStepError.invalid("no flow") }
        let record = try await context.runNested(flow, inputs: config["inputs"] ?? .object([:]))
        guard record.status == .succeeded else { throw FlowStepError(kind: "server_error", message: record.error ?? "failed") }
        return FlowStepOutput(record.output ?? .null, costUSD: record.costUSD)
    }
}

final class Library: Sendable {
    let flows = Mutex<[String: FlowDefinition]>([:])
}

struct FlowEngineTests {
    let flaky = FlakyExecutor()
    let sleeper = SleepExecutor()
    let library = Library()
    var engine: FlowEngine<String> {
        let library = self.library
        return FlowEngine(executors: [
            EchoExecutor(), flaky, sleeper, TransformExecutor<String>(), CombineExecutor<String>(),
            NestedExecutor(flows: { library.flows.withLock { $0 } }),
        ])
    }

    func run(_ yaml: String, _ inputs: JSONValue = .object([:]), events: (@Sendable (FlowEvent) -> Void)? = nil) async throws -> FlowRunRecord {
        let flow = try engine.parse(yaml)
        return await engine.run(flow, inputs: try FlowInputs.validate(inputs, for: flow), caller: "tester", runID: "run-1", events: events)
    }

    func step(_ record: FlowRunRecord, _ name: String) -> FlowStepRecord? { record.steps.first { $0.name == name } }

    @Test func aParallelGroupRunsTogetherAndItsDependantWaitsForAll() async throws {
        let record = try await run("""
            name: analysis
            inputs: {text: string}
            steps:
              - {name: extract, executor: transform, config: {value: "{{ inputs.text }}"}}
              - {name: sentiment, executor: sleep, parallel_group: analyze, depends_on: extract, config: {ms: 150, value: positive}}
              - {name: entities, executor: sleep, parallel_group: analyze, depends_on: extract, config: {ms: 150, value: [Ada]}}
              - {name: topic, executor: sleep, parallel_group: analyze, depends_on: extract, config: {ms: 150, value: science}}
              - name: report
                executor: combine
                depends_on: analyze
                config: {sources: ["{{ steps.sentiment.output }}", "{{ steps.entities.output }}", "{{ steps.topic.output }}", "{{ steps.extract.output }}"]}
            output: {report: "{{ steps.report.output }}", first_entity: "{{ steps.entities.output[0] }}"}
            """, ["text": "Ada wrote programs."])
        #expect(record.status == .succeeded)
        #expect(sleeper.most.withLock { $0 } == 3)
        #expect(record.output?["report"] == ["positive", ["Ada"], "science", "Ada wrote programs."])
        #expect(record.output?["first_entity"] == "Ada")
        let report = try #require(step(record, "report"))
        for name in ["sentiment", "entities", "topic"] {
            #expect(try #require(step(record, name)?.endedAt) <= report.startedAt!)
        }
    }

    @Test func conditionsSkipStepsAndDependantsOfSkippedStepsStillRun() async throws {
        let yaml = """
            name: route
            inputs:
              kind: {type: string, enum: [pdf, image, text]}
            steps:
              - {name: pdf, executor: echo, condition: "{{ inputs.kind == 'pdf' }}", config: {value: from pdf}}
              - {name: image, executor: echo, condition: "{{ inputs.kind == 'image' }}", config: {value: from image}}
              - {name: fallback, executor: echo, condition: "{{ inputs.kind not in ['pdf', 'image'] }}", config: {value: plain}}
              - name: result
                executor: transform
                depends_on: [pdf, image, fallback]
                config: {value: "{{ steps.pdf.output }}{{ steps.image.output }}{{ steps.fallback.output }}"}
            """
        let pdf = try await run(yaml, ["kind": "pdf"])
        #expect(pdf.output == "from pdf")
        #expect(step(pdf, "image")?.status == .skipped && step(pdf, "fallback")?.status == .skipped)
        let text = try await run(yaml, ["kind": "text"])
        #expect(text.output == "plain")
        #expect(step(text, "pdf")?.status == .skipped)
        #expect(step(text, "result")?.status == .succeeded)
    }

    @Test func aRetriedStepThatThenSucceedsCountsItsAttempts() async throws {
        let record = try await run("""
            name: retry
            steps:
              - name: call
                executor: flaky
                config: {failures: 2}
                retry: {max_attempts: 3, backoff_strategy: exponential, delay: 10ms}
            """)
        #expect(record.status == .succeeded)
        #expect(step(record, "call")?.attempts == 3)
        #expect(record.output == "ok after 3")
        let exhausted = try await run("""
            name: retry2
            steps:
              - {name: call2, executor: flaky, config: {failures: 5}, retry: {max_attempts: 2, delay: 1ms}}
            """)
        #expect(exhausted.status == .failed)
        #expect(step(exhausted, "call2")?.attempts == 2)
        #expect(exhausted.error?.contains("call2") == true)
        // Only the kinds named are retried.
        let other = try await run("""
            name: retry3
            steps:
              - {name: call3, executor: flaky, config: {failures: 1, kind: invalid_request_error}, retry: {max_attempts: 3, delay: 1ms}}
            """)
        #expect(step(other, "call3")?.attempts == 1)
    }

    @Test func backoffDoublesUpToItsCeiling() throws {
        let retry = try #require(try engine.parse("""
            name: b
            steps: [{name: a, executor: echo, retry: {max_attempts: 5, backoff_strategy: exponential, delay: 100ms, max_delay: 300ms}}]
            """).steps.first?.retry)
        #expect(retry.delay(after: 1) == .milliseconds(100))
        #expect(retry.delay(after: 2) == .milliseconds(200))
        #expect(retry.delay(after: 3) == .milliseconds(300))
        #expect(retry.delay(after: 9) == .milliseconds(300))
    }

    @Test func onErrorContinueAndFallback() async throws {
        let record = try await run("""
            name: errors
            steps:
              - {name: broken, executor: flaky, config: {failures: 9}, on_error: continue}
              - {name: primary, executor: flaky, config: {failures: 9}, on_error: {fallback: backup}}
              - {name: backup, executor: echo, config: {value: from backup}}
              - {name: after, executor: transform, depends_on: [broken, primary], config: {value: "{{ steps.primary.output }} / {{ steps.broken.status }}"}}
            """)
        #expect(record.status == .succeeded)
        #expect(step(record, "broken")?.status == .failed)
        #expect(step(record, "primary")?.status == .failed && step(record, "primary")?.recoveredBy == "backup")
        #expect(step(record, "backup")?.status == .succeeded)
        #expect(record.output == "from backup / failed")
    }

    @Test func anUnhandledFailureFailsTheRunAndSkipsWhatDidNotStart() async throws {
        let record = try await run("""
            name: fails
            steps:
              - {name: first, executor: flaky, config: {failures: 9}}
              - {name: second, executor: echo, depends_on: first, config: {value: never}}
            """)
        #expect(record.status == .failed)
        #expect(step(record, "second")?.status == .skipped)
        #expect(record.output == nil)
    }

    @Test func aStepOverItsTimeoutFailsAsATimeout() async throws {
        let record = try await run("""
            name: slow
            steps: [{name: wait, executor: sleep, timeout: 50ms, config: {ms: 5000}}]
            """)
        #expect(record.status == .failed)
        #expect(step(record, "wait")?.errorType == "timeout")
    }

    @Test func cancellingTheRunCancelsItsSteps() async throws {
        let flow = try engine.parse("""
            name: long
            steps:
              - {name: one, executor: sleep, config: {ms: 10000}}
              - {name: two, executor: echo, depends_on: one, config: {value: x}}
            """)
        let engine = self.engine
        let task = Task { await engine.run(flow, inputs: .object([:]), caller: "tester", runID: "r") }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let record = await task.value
        #expect(record.status == .cancelled)
        #expect(step(record, "two")?.status == .skipped)
    }

    @Test func nestedFlowsRunAndNestOnlySoDeep() async throws {
        let child = try engine.parse("""
            name: child
            inputs: {who: string}
            steps: [{name: greet, executor: transform, config: {value: "hello {{ inputs.who }}"}}]
            """)
        library.flows.withLock { $0["child"] = child }
        let record = try await run("""
            name: parent
            steps:
              - {name: a, executor: flow, config: {name: child, inputs: {who: Ada}}, parallel_group: kids}
              - {name: b, executor: flow, config: {name: child, inputs: {who: Alan}}, parallel_group: kids}
              - {name: both, executor: combine, depends_on: kids, config: {sources: ["{{ steps.a.output }}", "{{ steps.b.output }}"]}}
            """)
        #expect(record.status == .succeeded)
        #expect(record.output == ["hello Ada", "hello Alan"])
        let loop = try engine.parse("""
            name: loop
            steps: [{name: again, executor: flow, config: {name: loop}}]
            """)
        library.flows.withLock { $0["loop"] = loop }
        let deep = await engine.run(loop, inputs: .object([:]), caller: "tester", runID: "deep")
        #expect(deep.status == .failed)
        #expect(deep.error?.contains("nest at most") == true)
    }

    @Test func eventsComeInOrderAndCostsAddUp() async throws {
        let seen = Mutex<[String]>([])
        let record = try await run("""
            name: events
            steps:
              - {name: a, executor: echo, config: {value: 1}}
              - {name: b, executor: echo, depends_on: a, config: {value: 2}}
            """, events: { event in
                switch event {
                case .stepStarted(let name, _): seen.withLock { $0.append("start \(name)") }
                case .stepFinished(let step): seen.withLock { $0.append("end \(step.name)") }
                case .runFinished: seen.withLock { $0.append("run") }
                }
            })
        #expect(seen.withLock { $0 } == ["start a", "end a", "start b", "end b", "run"])
        #expect(abs(record.costUSD - 0.002) < 1e-12)
    }

    @Test func inputsAreCheckedAndDefaulted() throws {
        let flow = try engine.parse("""
            name: inputs
            inputs:
              text: string
              count: {type: integer, default: 3}
              mode: {type: string, enum: [fast, slow], required: false}
            steps: [{name: a, executor: echo}]
            """)
        #expect(try FlowInputs.validate(["text": "hi"], for: flow) == ["text": "hi", "count": 3, "mode": nil])
        #expect(throws: FlowValidationError.self) { try FlowInputs.validate(["count": 2], for: flow) }
        #expect(throws: FlowValidationError.self) { try FlowInputs.validate(["text": "hi", "count": 2.5], for: flow) }
        #expect(throws: FlowValidationError.self) { try FlowInputs.validate(["text": "hi", "mode": "medium"], for: flow) }
        #expect(throws: FlowValidationError.self) { try FlowInputs.validate(["text": "hi", "extra": 1], for: flow) }
        do {
            _ = try FlowInputs.validate(["text": 5], for: flow)
        } catch let error as FlowValidationError {
            #expect(error.description == "inputs.text: expected a string")
        }
        #expect(flow.inputsSchema["required"] == ["text"])
        #expect(flow.inputsSchema["properties"]?["count"]?["default"] == 3)
    }
}
