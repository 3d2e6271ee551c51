import ConduitProtocol
import Mustache

/// A prompt version with its partials resolved and its templates parsed: ready to render any
/// number of times, without I/O. The orchestrator keeps these; the registry makes one per render.
public struct CompiledPrompt: Sendable {
    public let version: PromptVersion
    /// Variables the templates need outside every section: each template's own in the order it
    /// uses them, then its partials'.
    public let required: [String]
    /// Every variable name the templates may read (required, sections, inside sections,
    /// placeholders): a given variable not among them is reported as unused.
    public let known: Set<String>
    /// The names of every prompt this one includes, itself first: a change to any of them
    /// makes this compiled copy stale.
    public let dependencies: Set<String>
    let parts: [Part]
    let library: MustacheLibrary

    enum Part: Sendable {
        case text(MustacheTemplate)
        case message(role: String, MustacheTemplate)
        case placeholder(String)
    }
}

/// What a rendering produced.
public struct RenderedPrompt: Sendable, Hashable {
    /// A text prompt's text.
    public var text: String?
    /// A chat prompt's messages, placeholders filled.
    public var messages: [ChatMessage]?
    /// Given variables the templates never read.
    public var unusedVariables: [String]
}

/// Resolves a prompt version's partials through `resolve` (the registry's store, the
/// orchestrator's hot copy) and parses every template once.
public enum PromptCompiler {
    /// Partials nested deeper than this are refused.
    public static let maximumDepth = 8

    public static func compile(
        _ version: PromptVersion,
        resolve: (String, PromptSelector) async throws -> PromptVersion?
    ) async throws -> CompiledPrompt {
        var library = MustacheLibrary()
        var required: [String] = []
        var known = Set<String>()
        var dependencies: Set<String> = [version.name]
        var aliases = 0

        /// The template's text with its partial tags renamed to registered aliases and its
        /// variables unescaped; partials compiled depth first, `path` the names above.
        func prepare(_ template: String, path: [String], requiredHere: Bool) async throws -> String {
            guard path.count <= maximumDepth else { throw PromptError.partialsTooDeep(maximumDepth) }
            let scan = try TemplateScan(template)
            if requiredHere { for name in scan.required where !required.contains(name) { required.append(name) } }
            known.formUnion(scan.required)
            known.formUnion(scan.optional)
            var partialAliases: [String] = []
            for partial in scan.partials {
                let reference = "\(partial.name)@\(partial.selector)"
                if let start = path.firstIndex(of: partial.name) {
                    throw PromptError.partialCycle(Array(path[start...]) + [partial.name])
                }
                guard let included = try await resolve(partial.name, partial.selector) else { throw PromptError.unknownPartial(reference) }
                guard case .text(let text) = included.body else { throw PromptError.chatPartial(reference) }
                dependencies.insert(partial.name)
                let prepared = try await prepare(text, path: path + [partial.name], requiredHere: requiredHere && !partial.inSection)
                aliases += 1
                let alias = "p\(aliases)"
                library.register(try parse(prepared), named: alias)
                partialAliases.append(alias)
            }
            var text = template
            for rewrite in scan.rewrites.reversed() {
                switch rewrite.replacement {
                case .partial(let index): text.replaceSubrange(rewrite.range, with: "{{>\(partialAliases[index])}}")
                case .unescaped(let content): text.replaceSubrange(rewrite.range, with: "{{&\(content)}}")
                }
            }
            return text
        }

        var parts: [CompiledPrompt.Part] = []
        switch version.body {
        case .text(let template):
            parts.append(.text(try parse(try await prepare(template, path: [version.name], requiredHere: true))))
        case .chat(let messages):
            for message in messages {
                switch message {
                case .message(let role, let content):
                    parts.append(.message(role: role, try parse(try await prepare(content, path: [version.name], requiredHere: true))))
                case .placeholder(let name):
                    if !required.contains(name) { required.append(name) }
                    known.insert(name)
                    parts.append(.placeholder(name))
                }
            }
        }
        return CompiledPrompt(version: version, required: required, known: known, dependencies: dependencies, parts: parts, library: library)
    }

    private static func parse(_ text: String) throws -> MustacheTemplate {
        do {
            return try MustacheTemplate(string: text)
        } catch let error as MustacheTemplate.ParserError {
            throw PromptError.invalidTemplate("\(error.error) at line \(error.context.lineNumber), column \(error.context.columnNumber)")
        }
    }
}

extension CompiledPrompt {
    /// Renders with `variables`; a required variable missing is `PromptError.missingVariables`.
    public func render(_ variables: [String: JSONValue]) throws(PromptError) -> RenderedPrompt {
        let missing = required.filter { variables[$0] == nil || variables[$0] == .null }
        guard missing.isEmpty else { throw .missingVariables(missing) }
        let unused = variables.keys.filter { !known.contains($0) }.sorted()
        let context = variables.mapValues(\.mustacheValue)
        var text: String?
        var messages: [ChatMessage] = []
        for part in parts {
            switch part {
            case .text(let template):
                text = template.render(context, library: library)
            case .message(let role, let template):
                messages.append(ChatMessage(role: role, content: .text(template.render(context, library: library))))
            case .placeholder(let name):
                messages += try Self.messages(of: name, variables[name] ?? .null)
            }
        }
        return RenderedPrompt(text: text, messages: version.body.type == .chat ? messages : nil, unusedVariables: unused)
    }

    /// A placeholder's variable: a list of `{"role", "content"}` objects.
    static func messages(of name: String, _ value: JSONValue) throws(PromptError) -> [ChatMessage] {
        guard case .array(let items) = value else { throw .invalidVariable(name: name, reason: "fills a placeholder and must be a list of messages") }
        var messages: [ChatMessage] = []
        for item in items {
            guard case .string(let role)? = item["role"], case .string(let content)? = item["content"] else {
                throw .invalidVariable(name: name, reason: "fills a placeholder: each item needs a string \"role\" and \"content\"")
            }
            messages.append(ChatMessage(role: role, content: .text(content)))
        }
        return messages
    }
}

extension JSONValue {
    /// The value as Mustache reads it: whole numbers without a fraction, null as missing.
    var mustacheValue: Any {
        switch self {
        case .null: return Optional<String>.none as Any
        case .bool(let value): return value
        case .number(let value): return value.rounded() == value && abs(value) < 1e15 ? Int(value) as Any : value as Any
        case .string(let value): return value
        case .array(let values): return values.map(\.mustacheValue)
        case .object(let fields): return fields.mapValues(\.mustacheValue)
        }
    }
}
