import ConduitProtocol
import Testing
@testable import Prompts

/// Compiling and rendering prompt templates: required and unused variables, values never
/// escaped, partials by name, label and version, cycles, chat templates with placeholders.
struct PromptCompilerTests {
    /// A registry of versions by name and selector.
    struct Store: Sendable {
        var versions: [String: [PromptVersion]] = [:]
        var labels: [String: [String: Int]] = [:]

        mutating func add(_ name: String, _ body: PromptBody, labels: [String] = ["production"]) {
            let version = PromptVersion(name: name, version: (versions[name]?.count ?? 0) + 1, body: body)
            versions[name, default: []].append(version)
            for label in labels { self.labels[name, default: [:]][label] = version.version }
        }

        func resolve(_ name: String, _ selector: PromptSelector) -> PromptVersion? {
            switch selector {
            case .version(let number): versions[name]?.first { $0.version == number }
            case .label(let label): labels[name]?[label].flatMap { number in versions[name]?.first { $0.version == number } }
            }
        }

        func compile(_ name: String, _ selector: PromptSelector = .production) async throws -> CompiledPrompt {
            let store = self
            return try await PromptCompiler.compile(try #require(resolve(name, selector))) { store.resolve($0, $1) }
        }
    }

    @Test func variablesRenderUnescapedAndMissingOnesAreNamed() async throws {
        var store = Store()
        store.add("greet", .text("Hello {{name}} <{{{title}}}> & {{&place}}{{#vip}}, welcome back{{/vip}}{{^vip}}.{{/vip}}"))
        let compiled = try await store.compile("greet")
        #expect(compiled.required == ["name", "title", "place"])
        let rendered = try compiled.render(["name": "<Ann & Bo>", "title": "\"Dr\"", "place": "'Oslo'", "vip": true, "extra": 1])
        #expect(rendered.text == "Hello <Ann & Bo> <\"Dr\"> & 'Oslo', welcome back")
        #expect(rendered.unusedVariables == ["extra"])
        #expect(try compiled.render(["name": "A", "title": "B", "place": "C"]).text == "Hello A <B> & C.")
        #expect(throws: PromptError.missingVariables(["title", "place"])) { try compiled.render(["name": "A"]) }
        #expect(PromptError.missingVariables(["title"]).description.contains("'title'"))
    }

    @Test func sectionsIterateAndNamesInsideThemAreOptional() async throws {
        var store = Store()
        store.add("list", .text("{{#items}}- {{label}} ({{count}})\n{{/items}}{{total.sum}}"))
        let compiled = try await store.compile("list")
        #expect(compiled.required == ["total"])
        let rendered = try compiled.render(["items": [["label": "a", "count": 2], ["label": "b", "count": 1.5]], "total": ["sum": 3]])
        #expect(rendered.text == "- a (2)\n- b (1.5)\n3")
    }

    @Test func partialsResolveByNameLabelAndVersionAndShareVariables() async throws {
        var store = Store()
        store.add("shared/tone", .text("Be {{tone}}."))
        store.add("shared/tone", .text("Be very {{tone}}."), labels: ["staging"])
        store.add("support", .text("{{> shared/tone}} {{> shared/tone@staging}} {{> shared/tone@1}} Answer {{question}}"))
        let compiled = try await store.compile("support")
        #expect(compiled.dependencies == ["support", "shared/tone"])
        #expect(compiled.required == ["question", "tone"])
        #expect(try compiled.render(["tone": "kind", "question": "why"]).text == "Be kind. Be very kind. Be kind. Answer why")
    }

    @Test func cyclesMissingAndChatPartialsAreErrors() async throws {
        var store = Store()
        store.add("a", .text("A {{> b}}"))
        store.add("b", .text("B {{> c@production}}"))
        store.add("c", .text("C {{> a}}"))
        store.add("self", .text("{{> self}}"))
        store.add("dangling", .text("{{> nowhere}}"))
        store.add("chatty", .chat([.message(role: "system", content: "hi")]))
        store.add("uses-chat", .text("{{> chatty}}"))
        await #expect(throws: PromptError.partialCycle(["a", "b", "c", "a"])) { try await store.compile("a") }
        await #expect(throws: PromptError.partialCycle(["self", "self"])) { try await store.compile("self") }
        await #expect(throws: PromptError.unknownPartial("nowhere@production")) { try await store.compile("dangling") }
        await #expect(throws: PromptError.chatPartial("chatty@production")) { try await store.compile("uses-chat") }
    }

    @Test func badTemplatesAreRefusedWithTheReason() async throws {
        for (template, reason) in [
            ("Hi {{name", "never closed"), ("{{#a}}x", "{{#a}} is never closed"), ("{{#a}}x{{/b}}", "closed by {{/b}}"),
            ("{{=<% %>=}}", "set delimiters"), ("{{<parent}}{{/parent}}", "inheritance"), ("{{>*dynamic}}", "dynamic"),
            ("{{> bad name}}", "does not name a prompt"), ("{{a b}}", "not a variable name"),
        ] {
            var store = Store()
            store.add("t", .text(template))
            do {
                _ = try await store.compile("t")
                Issue.record("\(template) compiled")
            } catch let error as PromptError {
                #expect(error.description.contains(reason), "\(template): \(error)")
            }
        }
    }

    @Test func chatTemplatesRenderEachMessageAndFillPlaceholders() async throws {
        var store = Store()
        store.add("chat", .chat([
            .message(role: "system", content: "You help with {{product}}."),
            .placeholder(name: "history"),
            .message(role: "user", content: "{{question}}"),
        ]))
        let compiled = try await store.compile("chat")
        #expect(compiled.required == ["product", "history", "question"])
        let rendered = try compiled.render([
            "product": "Conduit", "question": "How?",
            "history": [["role": "user", "content": "hi"], ["role": "assistant", "content": "hello"]],
        ])
        #expect(rendered.text == nil)
        #expect(rendered.messages?.map(\.role) == ["system", "user", "assistant", "user"])
        #expect(rendered.messages?.map { $0.content?.plainText } == ["You help with Conduit.", "hi", "hello", "How?"])
        #expect(throws: PromptError.invalidVariable(name: "history", reason: "fills a placeholder and must be a list of messages")) {
            try compiled.render(["product": "x", "question": "y", "history": "no"])
        }
    }

    @Test func aLeadingBlankLineAndStandaloneTagsKeepMustacheSpacing() async throws {
        var store = Store()
        store.add("lines", .text("\nfirst\n{{#on}}\nshown\n{{/on}}\nlast"))
        #expect(try await store.compile("lines").render(["on": true]).text == "\nfirst\nshown\nlast")
    }
}
