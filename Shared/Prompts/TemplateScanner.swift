import Foundation

/// What a Mustache template asks of its variables and its partials, read from its tags before
/// rendering: which variables it needs, which it may use, which prompts it includes.
///
/// A variable tag outside every section (`{{name}}`, `{{{name}}}`, `{{&name}}`, or the first
/// part of `{{a.b}}`) is required: rendering without it is an error naming it. A section's name
/// (`{{#name}}`, `{{^name}}`) and any name inside a section are optional (missing is empty or
/// false, and inside a section a name may come from the section's item). A partial tag
/// (`{{> name}}` or `{{> name@label}}`) includes another prompt. Set delimiters (`{{=`),
/// template inheritance (`{{<`, `{{$`) and dynamic partials (`{{>*`) are refused.
struct TemplateScan: Sendable {
    struct Partial: Sendable, Hashable {
        let name: String
        let selector: PromptSelector
        /// Inside a section: its variables are optional.
        let inSection: Bool
    }

    /// A tag whose text the renderer replaces (a partial's name, an escaped variable made raw).
    struct Rewrite: Sendable {
        let range: Range<String.Index>
        let replacement: Kind
        enum Kind: Sendable {
            case partial(index: Int)
            case unescaped(String)
        }
    }

    var required: [String] = []
    var optional: [String] = []
    var partials: [Partial] = []
    var rewrites: [Rewrite] = []

    init(_ template: String) throws(PromptError) {
        var sections: [String] = []
        var position = template.startIndex
        while let open = template[position...].range(of: "{{") {
            let triple = template[open.upperBound...].hasPrefix("{")
            let closing = triple ? "}}}" : "}}"
            let contentStart = triple ? template.index(after: open.upperBound) : open.upperBound
            guard let close = template[contentStart...].range(of: closing) else {
                throw .invalidTemplate("a tag opened with {{ is never closed")
            }
            let content = template[contentStart..<close.lowerBound]
            position = close.upperBound
            let tag = open.lowerBound..<close.upperBound
            if triple {
                try note(variable: content, in: sections)
                continue
            }
            let sigil = content.first
            let rest = content.dropFirst().trimmingSpaces
            switch sigil {
            case "!", "%": break
            case "=": throw .invalidTemplate("set delimiters ({{=) are not supported")
            case "<", "$": throw .invalidTemplate("template inheritance ({{< and {{$) is not supported")
            case "&": try note(variable: rest, in: sections)
            case "#", "^":
                let name = try Self.variableName(rest)
                sections.append(String(rest))
                if !optional.contains(name) { optional.append(name) }
            case "/":
                guard sections.last == String(rest) else {
                    throw .invalidTemplate(sections.last.map { "section {{#\($0)}} is closed by {{/\(rest)}}" } ?? "{{/\(rest)}} closes no section")
                }
                sections.removeLast()
            case ">":
                guard !rest.hasPrefix("*") else { throw .invalidTemplate("dynamic partials ({{>*) are not supported") }
                partials.append(try Self.partial(rest, inSection: !sections.isEmpty))
                rewrites.append(Rewrite(range: tag, replacement: .partial(index: partials.count - 1)))
            default:
                try note(variable: content, in: sections)
                // Values are never HTML-escaped: `{{x}}` renders as `{{&x}}` does.
                rewrites.append(Rewrite(range: tag, replacement: .unescaped(String(content))))
            }
        }
        if let open = sections.last { throw .invalidTemplate("section {{#\(open)}} is never closed") }
    }

    private mutating func note(variable content: Substring, in sections: [String]) throws(PromptError) {
        let name = try Self.variableName(content.trimmingSpaces)
        guard name != "." else { return }
        if sections.isEmpty {
            if !required.contains(name) { required.append(name) }
        } else if !optional.contains(name) {
            optional.append(name)
        }
    }

    /// The variable a tag reads: `a` of `a.b`, `x` of a transform `upper(x)`.
    static func variableName(_ content: Substring) throws(PromptError) -> String {
        var name = content
        if let open = name.firstIndex(of: "("), name.last == ")" {
            name = name[name.index(after: open)..<name.index(before: name.endIndex)].trimmingSpaces
        }
        guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "{" || $0 == "}" }) else {
            throw .invalidTemplate("{{\(content)}} is not a variable name")
        }
        if name == "." { return "." }
        return String(name.split(separator: ".", omittingEmptySubsequences: false)[0])
    }

    /// `name`, `name@label` or `name@3` (a version).
    static func partial(_ content: Substring, inSection: Bool) throws(PromptError) -> Partial {
        let parts = content.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard PromptNames.isValidName(name) else { throw .invalidTemplate("{{> \(content)}} does not name a prompt") }
        guard parts.count == 2 else { return Partial(name: name, selector: .production, inSection: inSection) }
        let selector = String(parts[1])
        if let version = Int(selector), version > 0 { return Partial(name: name, selector: .version(version), inSection: inSection) }
        guard PromptNames.isValidLabel(selector) else { throw .invalidTemplate("{{> \(content)}}: \(selector) is neither a label nor a version") }
        return Partial(name: name, selector: .label(selector), inSection: inSection)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
