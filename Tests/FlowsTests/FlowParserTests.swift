import ConduitProtocol
import Flows
import Testing

/// What loading a flow refuses, and the path its message gives.
struct FlowParserTests {
    let engine = FlowEngine<String>(executors: [EchoExecutor(), TransformExecutor<String>(), CombineExecutor<String>()])

    func problem(_ yaml: String) -> String? {
        do {
            _ = try engine.parse(yaml)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func cyclesAreRefusedNamingTheirSteps() throws {
        let message = try #require(problem("""
            name: loop
            steps:
              - {name: a, executor: echo, depends_on: c}
              - {name: b, executor: echo, depends_on: a}
              - {name: c, executor: echo, config: {value: "{{ steps.b.output }}"}}
            """))
        #expect(message.contains("cycle"))
        for name in ["a", "b", "c"] { #expect(message.contains(name)) }
        #expect(problem("name: self\nsteps: [{name: a, executor: echo, depends_on: a}]")?.contains("cycle") == true)
    }

    @Test func referencesMustNameStepsGroupsAndInputsThatExist() {
        #expect(problem("""
            name: refs
            steps:
              - {name: a, executor: echo}
              - {name: b, executor: echo}
              - {name: c, executor: echo, condition: "{{ steps.check_type.output == 'pdf' }}"}
            """) == "steps[2].condition: unknown step 'check_type'")
        #expect(problem("""
            name: refs
            steps:
              - {name: a, executor: echo, depends_on: [nope]}
            """) == "steps[0].depends_on[0]: unknown step or parallel group 'nope'")
        #expect(problem("""
            name: refs
            steps:
              - {name: a, executor: echo, config: {messages: [{content: "{{ steps.ghost.output }}"}]}}
            """) == "steps[0].config.messages[0].content: unknown step 'ghost'")
        #expect(problem("""
            name: refs
            steps: [{name: a, executor: echo, config: {value: "{{ secrets.key }}"}}]
            """)?.contains("unknown name 'secrets'") == true)
        #expect(problem("""
            name: refs
            steps: [{name: a, executor: echo}]
            output: "{{ steps.b.output }}"
            """) == "output: unknown step 'b'")
    }

    @Test func executorsFieldsAndValuesAreChecked() {
        #expect(problem("name: x\nsteps: [{name: a, executor: teleport}]")?.hasPrefix("steps[0].executor: unknown executor 'teleport'") == true)
        #expect(problem("name: x\nsteps: [{name: a, executor: transform}]") == "steps[0].config.value: required: the value to build")
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, colour: red}]")?.hasPrefix("steps[0].colour: unknown field") == true)
        #expect(problem("name: x\nsteps: [{name: a, executor: echo}, {name: a, executor: echo}]") == "steps[1].name: 'a' is used by two steps")
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, retry: {max_attempts: 50}}]") == "steps[0].retry.max_attempts: a whole number from 1 to 10")
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, retry: {backoff_strategy: random}}]") == "steps[0].retry.backoff_strategy: exponential or fixed")
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, timeout: soon}]")?.hasPrefix("steps[0].timeout:") == true)
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, on_error: {fallback: b}}]") == "steps[0].on_error.fallback: unknown step 'b'")
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, condition: \"kind == 1\"}]") == "steps[0].condition: one {{ expression }} and nothing around it")
        #expect(problem("name: x\nsteps: [{name: a, executor: echo, condition: \"{{ inputs.kind == }}\"}]")?.hasPrefix("steps[0].condition: bad expression") == true)
        #expect(problem("name: x\nsteps: []") == "steps: required: a list of at least one step")
        #expect(problem("steps: [{name: a, executor: echo}]")?.hasPrefix("name: required") == true)
        #expect(problem("name: [unclosed")?.hasPrefix("not valid YAML") == true)
    }

    /// A few lines of aliases that would expand to billions of values are refused, not expanded.
    @Test func aliasBombsAreRefused() {
        var yaml = "name: bomb\nlevel0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { yaml += "level\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        yaml += "steps: [{name: a, executor: echo}]\n"
        #expect(problem(yaml)?.contains("too large once its aliases are expanded") == true)
    }

    @Test func badInputSchemasAreRefused() {
        #expect(problem("name: x\ninputs: {n: {type: integer, default: nope}}\nsteps: [{name: a, executor: echo}]") == "inputs.n.default: not a integer")
        #expect(problem("name: x\ninputs: {n: decimal}\nsteps: [{name: a, executor: echo}]")?.hasPrefix("inputs.n: unknown type 'decimal'") == true)
        #expect(problem("name: x\ninputs: {n: {type: string, enum: []}}\nsteps: [{name: a, executor: echo}]") == "inputs.n.enum: a non-empty list")
        #expect(problem("name: x\ninputs: {\"bad name\": string}\nsteps: [{name: a, executor: echo}]")?.hasPrefix("inputs.bad name:") == true)
    }

    @Test func fallbacksOnlyRunInTheStepsStead() {
        #expect(problem("""
            name: x
            steps:
              - {name: a, executor: echo, on_error: {fallback: b}}
              - {name: b, executor: echo}
              - {name: c, executor: echo, depends_on: b}
            """)?.contains("only runs as a fallback") == true)
        #expect(problem("""
            name: x
            steps:
              - {name: first, executor: echo}
              - {name: a, executor: echo, on_error: {fallback: b}}
              - {name: b, executor: echo, depends_on: first}
            """)?.contains("does not depend on") == true)
    }
}

/// The expression language: what it computes, and what it refuses to read.
struct FlowExpressionTests {
    let scope: [String: JSONValue] = [
        "inputs": ["kind": "pdf", "size": 12, "tags": ["a", "b"], "meta": ["lang": "en"]],
        "steps": ["check": ["output": ["label": "invoice", "scores": [0.2, 0.9]], "status": "succeeded"]],
    ]

    func value(_ source: String) throws -> JSONValue { try FlowExpression(source).evaluate(in: scope) }

    @Test func comparisonsLogicAndMembership() throws {
        #expect(try value("inputs.kind == 'pdf'") == true)
        #expect(try value("inputs.kind != \"pdf\"") == false)
        #expect(try value("inputs.size > 10 and inputs.size <= 12") == true)
        #expect(try value("inputs.size < 3 or not (inputs.kind == 'doc')") == true)
        #expect(try value("'a' in inputs.tags") == true)
        #expect(try value("'c' not in inputs.tags") == true)
        #expect(try value("'lang' in inputs.meta") == true)
        #expect(try value("'voice' in steps.check.output.label") == true)
        #expect(try value("inputs.kind in ['pdf', 'docx']") == true)
        #expect(try value("steps.check.output.scores[1] >= 0.9") == true)
        #expect(try value("steps.check.output['label']") == "invoice")
        #expect(try value("steps.missing.output.label") == nil)
        #expect(try value("steps.missing.output == null") == true)
        #expect(try value("'b' < 'a'") == false)
        #expect(try value("steps.missing.output or 'none'") == "none")
        #expect(try value("inputs.kind == 'pdf' and 'document' or 'other'") == "document")
        #expect(try value("inputs.kind == 'png' and 'image' or 'other'") == "other")
        #expect(try value("inputs.kind < 3") == false)
        #expect(try FlowExpression("steps.check.output and steps.other.status == 'succeeded'").referencedSteps == ["check", "other"])
        #expect(FlowExpression.isTruthy(.array([])) == false && FlowExpression.isTruthy("x"))
    }

    @Test func anythingButReadingIsASyntaxError() {
        for source in ["inputs.kind ==", "foo()", "1 + 2", "'open", "inputs.", "a[", "import os", "(a", "not", "a == b == c"] {
            #expect(throws: FlowExpression.SyntaxError.self, "\(source)") { try FlowExpression(source) }
        }
        #expect(throws: FlowExpression.SyntaxError.self) { try FlowExpression(String(repeating: "(", count: 40) + "a" + String(repeating: ")", count: 40)) }
    }

    @Test func templatesKeepTypesWhenWholeAndInterpolateOtherwise() throws {
        let template = try FlowTemplate([
            "list": "{{ inputs.tags }}", "text": "kind={{ inputs.kind }} size={{ inputs.size }} tags={{ inputs.tags }}",
            "nested": [["x": "{{ steps.check.output.label }}"]], "plain": 7, "padded": "  {{ inputs.size }}  ",
        ])
        let rendered = template.render(scope)
        #expect(rendered["list"] == ["a", "b"])
        #expect(rendered["text"] == #"kind=pdf size=12 tags=["a","b"]"#)
        #expect(rendered["nested"]?[0]?["x"] == "invoice")
        #expect(rendered["plain"] == 7)
        #expect(rendered["padded"] == 12)
        #expect(template.referencedSteps.map(\.step) == ["check"])
        #expect(throws: FlowTemplate.Problem.self) { try FlowTemplate("{{ unclosed") }
        #expect(throws: FlowTemplate.Problem.self) { try FlowTemplate("{{ }}") }
    }
}
