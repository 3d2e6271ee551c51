import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Prompts

/// `conduit.prompt`: the registry's template rendered into the request. A chat template's
/// messages go before the request's own, a text template becomes the system message in front;
/// the version's `config` fills the request's fields the caller left unset. With no label or
/// version named (or the label an experiment runs on), a running experiment picks the variant,
/// sticky per user or session. The answer and the usage event say which version served it.
struct PromptStage: ChatStage {
    let directory: any PromptDirectory

    /// The variables given that the template never read (the first 20), comma-separated.
    static let unusedHeader = "X-Conduit-Prompt-Unused-Variables"

    func check(_ turn: ChatTurn) throws {
        guard let options = turn.options?.prompt else { return }
        guard PromptNames.isValidName(options.name) else {
            throw APIError.invalidRequest("'conduit.prompt.name' names a prompt: letters, digits, '.', '-', '_', with '/' between folders.", param: "conduit.prompt.name")
        }
        if let label = options.label, !PromptNames.isValidLabel(label) {
            throw APIError.invalidRequest("'conduit.prompt.label' is 1 to 64 letters, digits, '.', '-' or '_'.", param: "conduit.prompt.label")
        }
        if let version = options.version {
            guard version > 0, version <= Int(Int32.max) else { throw APIError.invalidRequest("'conduit.prompt.version' is a version number from 1.", param: "conduit.prompt.version") }
            guard options.label == nil else { throw APIError.invalidRequest("Give 'conduit.prompt.label' or 'version', not both.", param: "conduit.prompt.version") }
        }
    }

    func prepare(_ turn: inout ChatTurn, context: ConduitRequestContext) async throws -> StageAnswer? {
        guard let options = turn.options?.prompt else { return nil }
        let asked: PromptSelector = options.version.map(PromptSelector.version) ?? .label(options.label ?? "production")
        guard var resolved = try await lookup(turn, options.name, asked, context: context) else { throw Self.notFound(options, asked) }
        var info = PromptInfo(name: options.name, version: resolved.compiled.version.version, label: options.version == nil ? options.label ?? "production" : nil)
        if options.version == nil, let experiment = resolved.experiment, experiment.label == (options.label ?? "production"),
           let variant = experiment.assignment.variant(for: Self.subject(of: turn, experiment: experiment, context: context)) {
            if variant.selector != asked {
                guard let chosen = try await lookup(turn, options.name, variant.selector, context: context) else { throw Self.notFound(options, variant.selector) }
                resolved = chosen
            }
            info.version = resolved.compiled.version.version
            info.variant = variant.name
            info.experimentID = experiment.id
        }
        let rendered: RenderedPrompt
        do {
            rendered = try resolved.compiled.render(options.variables ?? [:])
        } catch {
            throw Self.apiError(error)
        }
        if !rendered.unusedVariables.isEmpty {
            // Reported, not refused: a variable the template stopped reading is not an error.
            turn.responseHeaders[HTTPField.Name(Self.unusedHeader)!] = String(rendered.unusedVariables.prefix(20).joined(separator: ",").prefix(1000))
        }
        var messages = rendered.messages ?? []
        if let text = rendered.text { messages = [ChatMessage(role: "system", content: .text(text))] }
        turn.body.messages = messages + turn.body.messages
        if !resolved.compiled.version.config.isEmpty { turn.body = try Self.applying(resolved.compiled.version.config, under: turn.body) }
        turn.prompt = info
        turn.billing.promptName = info.name
        turn.billing.promptVersion = info.version
        turn.billing.experimentID = info.experimentID
        turn.billing.variant = info.variant
        return nil
    }

    private func lookup(_ turn: ChatTurn, _ name: String, _ selector: PromptSelector, context: ConduitRequestContext) async throws -> ResolvedPrompt? {
        do {
            return try await directory.prompt(tenant: turn.tenant, name: name, selector, context: context)
        } catch let error as PromptError {
            throw Self.apiError(error)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.serviceUnavailable("The prompt registry could not be reached.")
        }
    }

    /// Whose id keeps the variant: the experiment's subject, else the other, else the request.
    static func subject(of turn: ChatTurn, experiment: HotExperiment, context: ConduitRequestContext) -> String {
        let user = turn.billing.user ?? turn.request.user
        let session = SessionStage.session(of: turn)?.id
        let ordered = experiment.subject == "session" ? [session, user] : [user, session]
        return ordered.compactMap { $0 }.first ?? context.requestID
    }

    /// The config's fields the request leaves unset, filled in: numbers and strings directly,
    /// the structured ones (tools, response_format, tool_choice, stop) decoded from their JSON.
    static func applying(_ config: [String: JSONValue], under body: ChatCompletionRequest) throws -> ChatCompletionRequest {
        var body = body
        func decoded<T: Decodable>(_ key: String, _ value: JSONValue) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value))
            } catch {
                throw APIError.invalidRequest("The prompt's config has a '\(key)' a chat request cannot take.", param: "conduit.prompt", code: "invalid_prompt_config")
            }
        }
        for (key, value) in config {
            switch key {
            case "temperature": if body.temperature == nil { body.temperature = value.doubleValue }
            case "top_p": if body.topP == nil { body.topP = value.doubleValue }
            case "max_tokens": if body.maxTokens == nil && body.maxCompletionTokens == nil { body.maxTokens = value.intValue }
            case "max_completion_tokens": if body.maxCompletionTokens == nil && body.maxTokens == nil { body.maxCompletionTokens = value.intValue }
            case "presence_penalty": if body.presencePenalty == nil { body.presencePenalty = value.doubleValue }
            case "frequency_penalty": if body.frequencyPenalty == nil { body.frequencyPenalty = value.doubleValue }
            case "seed": if body.seed == nil { body.seed = value.intValue }
            case "reasoning_effort": if body.reasoningEffort == nil, case .string(let effort) = value { body.reasoningEffort = effort }
            case "parallel_tool_calls": if body.parallelToolCalls == nil { body.parallelToolCalls = value.boolValue }
            case "tools": if body.tools == nil { body.tools = try decoded(key, value) }
            case "tool_choice": if body.toolChoice == nil { body.toolChoice = try decoded(key, value) }
            case "response_format": if body.responseFormat == nil { body.responseFormat = try decoded(key, value) }
            case "stop": if body.stop == nil { body.stop = try decoded(key, value) }
            default: break
            }
        }
        return body
    }

    static func apiError(_ error: any Error) -> APIError {
        guard let error = error as? PromptError else { return ChatErrors.apiError(for: error) }
        switch error {
        case .missingVariables(let names):
            return APIError.invalidRequest(error.description, param: "conduit.prompt.variables.\(names[0])", code: "missing_variable")
        case .invalidVariable(let name, _):
            return APIError.invalidRequest(error.description, param: "conduit.prompt.variables.\(name)", code: "invalid_variable")
        default:
            return APIError.invalidRequest(error.description, param: "conduit.prompt", code: "invalid_template")
        }
    }

    static func notFound(_ options: PromptOptions, _ selector: PromptSelector) -> APIError {
        let message = switch selector {
        case .label(let label): "No prompt '\(options.name)' with a label '\(label)' exists for this tenant."
        case .version(let version): "No prompt '\(options.name)' with a version \(version) exists for this tenant."
        }
        var error = APIError.notFound(message)
        error.envelope.error.param = "conduit.prompt.name"
        error.envelope.error.code = "prompt_not_found"
        return error
    }
}
