/// Why a prompt could not be compiled or rendered; each says what to fix.
public enum PromptError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The template's tags do not parse.
    case invalidTemplate(String)
    /// Variables the template needs that were not given, in the order the template uses them.
    case missingVariables([String])
    /// A variable has the wrong shape (a placeholder's messages that are not messages).
    case invalidVariable(name: String, reason: String)
    /// A partial names a prompt, label or version that does not exist.
    case unknownPartial(String)
    /// A partial is a chat prompt: only text prompts can be included.
    case chatPartial(String)
    /// Partials that include each other, as the path that closes the cycle.
    case partialCycle([String])
    /// Partials nested deeper than `PromptCompiler.maximumDepth`.
    case partialsTooDeep(Int)

    public var description: String {
        switch self {
        case .invalidTemplate(let reason): "The template is not valid Mustache: \(reason)."
        case .missingVariables(let names):
            names.count == 1 ? "The variable '\(names[0])' is required by the template and was not given."
                : "The variables \(names.map { "'\($0)'" }.joined(separator: ", ")) are required by the template and were not given."
        case .invalidVariable(let name, let reason): "The variable '\(name)' \(reason)."
        case .unknownPartial(let reference): "The partial {{> \(reference)}} names no prompt version."
        case .chatPartial(let reference): "The partial {{> \(reference)}} is a chat prompt; only text prompts can be included."
        case .partialCycle(let path): "The partials include each other: \(path.joined(separator: " → "))."
        case .partialsTooDeep(let depth): "The partials are nested more than \(depth) deep."
        }
    }
}
