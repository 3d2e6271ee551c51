import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Prompts

/// `/v1/prompts`: prompts, their immutable versions and labels, diff and render, for the
/// caller's tenant; `/internal/prompts` gives the orchestrator a version its hot copy lacks.
///
/// Prompt names may hold folders (`support/greeting`), so the routes after the name are read
/// from the path's end: a name's last segment cannot be `versions`, `diff`, `labels`,
/// `render` or `history`.
struct PromptController: Sendable {
    let store: PromptStore
    let hotCopy: HotCopyWriter
    /// Bytes of one template (a text template, or all of a chat template's contents).
    var maxTemplateBytes = 100_000
    var maxMessages = 200

    static let reservedSegments: Set<String> = ["versions", "diff", "labels", "render", "history"]
    /// Version numbers as Postgres keeps them (`integer`).
    static let versions = 1...Int(Int32.max)

    /// A 400 for text Postgres cannot keep whole (it would cut it at the NUL).
    static func checkText(_ texts: [String], param: String) throws {
        guard !texts.contains(where: { $0.utf8.contains(0) }) else {
            throw APIError.invalidRequest("'\(param)' must not contain NUL characters.", param: param)
        }
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/prompts") { request, context in try await create(request, context) }
        router.get("/v1/prompts") { request, context in
            try context.require(.readPrompts, "Reading prompts needs the viewer, developer or admin role.")
            let prefix = request.uri.queryParameters["prefix"].map(String.init)
            let limit = min(1000, max(1, request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100))
            let prompts = try await store.list(tenant: try context.callerTenant(), prefix: prefix, limit: limit)
            return try jsonResponse(JSONValue.object(["object": "list", "data": .array(prompts.map { prompt in
                .object(["name": .string(prompt.name), "type": .string(prompt.type), "latest_version": .number(Double(prompt.latest)),
                         "labels": .object(prompt.labels.mapValues { .number(Double($0)) })])
            })]))
        }
        router.get("/v1/prompts/**") { request, context in
            try context.require(.readPrompts, "Reading prompts needs the viewer, developer or admin role.")
            let (name, action) = try Self.nameAndAction(context)
            let tenant = try context.callerTenant()
            switch action {
            case nil: return try await get(name, tenant: tenant, request)
            case "versions":
                let versions = try await store.versions(tenant: tenant, name: name)
                guard !versions.isEmpty else { throw Self.notFound(name) }
                return try jsonResponse(JSONValue.object(["object": "list", "data": .array(try versions.map(Self.json))]))
            case "diff": return try await diff(name, tenant: tenant, request)
            case "history":
                guard try await store.state(tenant: tenant, name: name) != nil else { throw Self.notFound(name) }
                return try jsonResponse(JSONValue.object(["object": "list", "data": .array(try await store.moves(tenant: tenant, name: name, limit: 200))]))
            default: throw APIError.notFound("No such route.")
            }
        }
        router.post("/v1/prompts/**") { request, context in
            let (name, action) = try Self.nameAndAction(context)
            switch action {
            case "labels": return try await moveLabel(name, request, context)
            case "render":
                try context.require(.readPrompts, "Rendering prompts needs the viewer, developer or admin role.")
                return try await render(name, request, context)
            default: throw APIError.notFound("No such route.")
            }
        }
        router.delete("/v1/prompts/**") { _, context in
            let (name, action) = try Self.nameAndAction(context)
            guard action == nil else { throw APIError.notFound("No such route.") }
            try context.require(.manageKeys, "Deleting a prompt needs the admin role.")
            let tenant = try context.callerTenant()
            let write: PromptWrite
            do { write = try await store.delete(tenant: tenant, name: name) } catch PromptStoreError.notFound { throw Self.notFound(name) }
            await hotCopy.write(tenant: tenant, state: write.state, versions: [])
            return try jsonResponse(JSONValue.object(["name": .string(name), "deleted": true]))
        }
        // The orchestrator's way in when its hot copy has no complete copy: one version (with the
        // prompt's running experiment), and the hot copy rebuilt so the next lookup finds it.
        router.get("/internal/prompts/**") { request, context in
            let (name, action) = try Self.nameAndAction(context)
            guard action == nil else { throw APIError.notFound("No such route.") }
            let tenant = try context.callerTenant()
            let selector = try Self.selector(request)
            guard let state = try await store.state(tenant: tenant, name: name), !state.deleted else { throw Self.notFound(name) }
            try? await hotCopy.rebuild(tenant: tenant, name: name)
            guard let version = try await store.version(tenant: tenant, name: name, selector) else { throw Self.notFound(name, selector) }
            var body: [String: JSONValue] = ["version": try Self.json(version)]
            if let experiment = state.experiment { body["experiment"] = try JSONValue.encoding(experiment) }
            return try jsonResponse(JSONValue.object(body))
        }
    }

    // MARK: routes

    struct CreateRequest: Decodable {
        var name: String?
        var type: PromptType?
        var template: String?
        var messages: [PromptMessage]?
        var config: [String: JSONValue]?
        var labels: [String]?
        var commitMessage: String?

        enum CodingKeys: String, CodingKey {
            case name, type, template, messages, config, labels
            case commitMessage = "commit_message"
        }
    }

    func create(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.writePrompts, "Writing prompts needs the developer or admin role.")
        let ask = try await request.decodeJSON(CreateRequest.self, context: context)
        guard let name = ask.name else { throw APIError.invalidRequest("'name' is required.", param: "name") }
        try Self.checkName(name)
        let body: PromptBody
        switch ask.type ?? (ask.messages != nil ? .chat : .text) {
        case .text:
            guard let template = ask.template else { throw APIError.invalidRequest("A text prompt needs 'template'.", param: "template") }
            guard ask.messages == nil else { throw APIError.invalidRequest("A text prompt has 'template', not 'messages'.", param: "messages") }
            body = .text(template)
        case .chat:
            guard let messages = ask.messages, !messages.isEmpty else {
                throw APIError.invalidRequest("A chat prompt needs 'messages': a list of {\"role\", \"content\"} or {\"type\": \"placeholder\", \"name\"}.", param: "messages")
            }
            guard ask.template == nil else { throw APIError.invalidRequest("A chat prompt has 'messages', not 'template'.", param: "template") }
            guard messages.count <= maxMessages else { throw APIError.invalidRequest("A chat prompt has at most \(maxMessages) messages.", param: "messages") }
            for case .message(let role, _) in messages where !["system", "developer", "user", "assistant"].contains(role) {
                throw APIError.invalidRequest("A chat prompt's message role is system, developer, user or assistant, not '\(role)'.", param: "messages")
            }
            for case .placeholder(let variable) in messages where !PromptNames.isValidLabel(variable) {
                throw APIError.invalidRequest("A placeholder's 'name' is a variable name: letters, digits, '.', '-' or '_'.", param: "messages")
            }
            body = .chat(messages)
        }
        try Self.checkText(body.templates, param: ask.template != nil ? "template" : "messages")
        if case .chat(let messages) = body {
            try Self.checkText(messages.compactMap { if case .message(let role, _) = $0 { role } else { nil } }, param: "messages")
        }
        guard body.templates.reduce(0, { $0 + $1.utf8.count }) <= maxTemplateBytes else {
            throw APIError.invalidRequest("A template is at most \(maxTemplateBytes) bytes.", param: ask.template != nil ? "template" : "messages")
        }
        let labels = ask.labels ?? []
        for label in labels { try Self.checkLabel(label, param: "labels") }
        if let config = ask.config {
            guard JSONValue.object(config).jsonString.utf8.count <= 16_384 else { throw APIError.invalidRequest("'config' is at most 16 KB of JSON.", param: "config") }
            try Self.checkConfig(config)
        }
        if let message = ask.commitMessage, message.utf8.count > 1000 {
            throw APIError.invalidRequest("'commit_message' is at most 1000 bytes.", param: "commit_message")
        }
        try Self.checkText([ask.commitMessage ?? ""], param: "commit_message")
        if let config = ask.config { try Self.checkText([JSONValue.object(config).jsonString], param: "config") }
        let tenant = caller.tenant
        // The template must compile now, partials and all: a broken version is never stored.
        try await compile(PromptVersion(name: name, version: 0, body: body), tenant: tenant)
        let write: PromptWrite
        do {
            write = try await store.createVersion(
                tenant: tenant, name: name, body: body, config: ask.config ?? [:], commitMessage: ask.commitMessage,
                author: caller.user ?? caller.keyID, labels: labels, mayMoveProtected: caller.can(.manageKeys))
        } catch PromptStoreError.typeChanged(let type) {
            throw APIError.invalidRequest("'\(name)' is a \(type.rawValue) prompt; its versions keep that type.", param: "type", code: "prompt_type_mismatch")
        } catch PromptStoreError.protectedLabel(let label) {
            throw Self.protectedError(label)
        }
        let version = try require(write.version)
        await hotCopy.write(tenant: tenant, state: write.state, versions: [version])
        var answer = try Self.json(version).objectValue ?? [:]
        answer["labels"] = .array(write.state.labels.filter { $0.version.version == version.version }.map { .string($0.label) })
        return try jsonResponse(JSONValue.object(answer), status: .created)
    }

    func get(_ name: String, tenant: String, _ request: Request) async throws -> Response {
        let selector = try Self.selector(request)
        guard let state = try await store.state(tenant: tenant, name: name) else { throw Self.notFound(name) }
        // A deleted prompt's versions stay readable by number; its labels are gone.
        if state.deleted, case .label = selector { throw Self.notFound(name) }
        // A label's version came with the state; a number is one more query.
        var found: PromptVersion?
        if case .label(let label) = selector { found = state.labels.first { $0.label == label }?.version }
        if found == nil { found = try await store.version(tenant: tenant, name: name, selector) }
        guard let version = found else { throw Self.notFound(name, selector) }
        var answer = try Self.json(version).objectValue ?? [:]
        answer["labels"] = .array(state.labels.filter { $0.version.version == version.version }.map { .string($0.label) })
        answer["all_labels"] = .object(Dictionary(uniqueKeysWithValues: state.labels.map {
            ($0.label, JSONValue.object(["version": .number(Double($0.version.version)), "protected": .bool($0.protected)]))
        }))
        if let experiment = state.experiment { answer["experiment_id"] = .string(experiment.id) }
        if state.deleted { answer["deleted"] = true }
        return try jsonResponse(JSONValue.object(answer))
    }

    struct LabelRequest: Decodable {
        var label: String?
        var version: Int?
        var protected: Bool?
    }

    func moveLabel(_ name: String, _ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.writePrompts, "Moving labels needs the developer or admin role.")
        let ask = try await request.decodeJSON(LabelRequest.self, context: context)
        guard let label = ask.label else { throw APIError.invalidRequest("'label' is required.", param: "label") }
        try Self.checkLabel(label, param: "label")
        guard let version = ask.version else { throw APIError.invalidRequest("'version' is required.", param: "version") }
        guard Self.versions.contains(version) else { throw APIError.invalidRequest("'version' is a version number from 1.", param: "version") }
        let write: PromptWrite
        do {
            write = try await store.moveLabel(tenant: caller.tenant, name: name, label: label, version: version, protect: ask.protected,
                                              by: caller.user ?? caller.keyID, mayMoveProtected: caller.can(.manageKeys))
        } catch PromptStoreError.notFound {
            throw Self.notFound(name)
        } catch PromptStoreError.noSuchVersion(let number) {
            throw APIError.invalidRequest("'\(name)' has no version \(number).", param: "version", code: "version_not_found")
        } catch PromptStoreError.protectedLabel(let label) {
            throw Self.protectedError(label)
        }
        await hotCopy.write(tenant: caller.tenant, state: write.state, versions: [])
        let moved = write.state.labels.first { $0.label == label }
        return try jsonResponse(JSONValue.object([
            "name": .string(name), "label": .string(label), "version": .number(Double(version)), "protected": .bool(moved?.protected ?? false),
        ]))
    }

    struct RenderRequest: Decodable {
        var label: String?
        var version: Int?
        var variables: [String: JSONValue]?
    }

    func render(_ name: String, _ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let ask = try await request.decodeJSON(RenderRequest.self, context: context)
        let tenant = try context.callerTenant()
        let selector: PromptSelector = try ask.version.map { number in
            guard ask.label == nil else { throw APIError.invalidRequest("Give 'label' or 'version', not both.", param: "version") }
            guard Self.versions.contains(number) else { throw APIError.invalidRequest("'version' is a version number from 1.", param: "version") }
            return .version(number)
        } ?? .label(ask.label ?? "production")
        if let label = ask.label { try Self.checkLabel(label, param: "label", allowLatest: true) }
        guard let state = try await store.state(tenant: tenant, name: name), !state.deleted || selector != .production else { throw Self.notFound(name) }
        guard let version = try await store.version(tenant: tenant, name: name, selector) else { throw Self.notFound(name, selector) }
        let rendered: RenderedPrompt
        do {
            rendered = try await compile(version, tenant: tenant).render(ask.variables ?? [:])
        } catch let error as PromptError {
            throw Self.apiError(error)
        }
        var answer: [String: JSONValue] = ["name": .string(name), "version": .number(Double(version.version)),
                                           "unused_variables": .array(rendered.unusedVariables.map(JSONValue.string))]
        if let text = rendered.text { answer["text"] = .string(text) }
        if let messages = rendered.messages { answer["messages"] = try JSONValue.encoding(messages) }
        answer["config"] = .object(version.config)
        return try jsonResponse(JSONValue.object(answer))
    }

    func diff(_ name: String, tenant: String, _ request: Request) async throws -> Response {
        guard let from = request.uri.queryParameters["from"].flatMap({ Int($0) }), let to = request.uri.queryParameters["to"].flatMap({ Int($0) }),
              Self.versions.contains(from), Self.versions.contains(to) else {
            throw APIError.invalidRequest("'from' and 'to' are the two version numbers to compare.", param: "from")
        }
        guard let old = try await store.version(tenant: tenant, name: name, .version(from)) else { throw Self.notFound(name, .version(from)) }
        guard let new = try await store.version(tenant: tenant, name: name, .version(to)) else { throw Self.notFound(name, .version(to)) }
        return try jsonResponse(PromptDiff.between(old, new))
    }

    // MARK: helpers

    /// Compiles with partials from the tenant's prompts: a compile error is a 400.
    @discardableResult
    func compile(_ version: PromptVersion, tenant: String) async throws -> CompiledPrompt {
        do {
            return try await PromptCompiler.compile(version) { name, selector in
                try await store.version(tenant: tenant, name: name, selector)
            }
        } catch let error as PromptError {
            throw Self.apiError(error)
        }
    }

    static func apiError(_ error: PromptError) -> APIError {
        switch error {
        case .missingVariables(let names):
            APIError.invalidRequest(error.description, param: "variables.\(names[0])", code: "missing_variable")
        case .invalidVariable(let name, _):
            APIError.invalidRequest(error.description, param: "variables.\(name)", code: "invalid_variable")
        case .partialCycle: APIError.invalidRequest(error.description, param: "template", code: "partial_cycle")
        case .unknownPartial: APIError.invalidRequest(error.description, param: "template", code: "unknown_partial")
        default: APIError.invalidRequest(error.description, param: "template", code: "invalid_template")
        }
    }

    /// The prompt's name and the route after it, from the path's catch-all.
    static func nameAndAction(_ context: ConduitRequestContext) throws -> (String, String?) {
        // A name may come in one segment with its folders escaped (`support%2Fanswer`).
        var segments = context.parameters.getCatchAll().flatMap { segment in
            (String(segment).removingPercentEncoding ?? String(segment)).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        }
        var action: String?
        if segments.count > 1, let last = segments.last, reservedSegments.contains(last) {
            action = last
            segments.removeLast()
        }
        let name = segments.joined(separator: "/")
        guard PromptNames.isValidName(name) else { throw APIError.notFound("No prompt is named '\(name)'.") }
        return (name, action)
    }

    static func selector(_ request: Request) throws -> PromptSelector {
        let label = request.uri.queryParameters["label"].map(String.init)
        if let text = request.uri.queryParameters["version"] {
            guard label == nil else { throw APIError.invalidRequest("Give 'label' or 'version', not both.", param: "version") }
            guard let number = Int(text), Self.versions.contains(number) else { throw APIError.invalidRequest("'version' is a version number.", param: "version") }
            return .version(number)
        }
        if let label { try checkLabel(label, param: "label", allowLatest: true) }
        return .label(label ?? "production")
    }

    static func checkName(_ name: String) throws {
        guard PromptNames.isValidName(name), !reservedSegments.contains(String(name.split(separator: "/").last ?? "")) else {
            throw APIError.invalidRequest(
                "'name' is 1 to 200 bytes of letters, digits, '.', '-', '_' and '/' between folders; its last part is not versions, diff, labels, render or history.",
                param: "name")
        }
    }

    static func checkLabel(_ label: String, param: String, allowLatest: Bool = false) throws {
        guard PromptNames.isValidLabel(label) else {
            throw APIError.invalidRequest("A label is 1 to 64 letters, digits, '.', '-' or '_', not all digits.", param: param)
        }
        guard label != "latest" || allowLatest else { throw APIError.invalidRequest("'latest' always points at the newest version; it cannot be moved.", param: param) }
    }

    /// The fields the chat path applies must have their wire types.
    static func checkConfig(_ config: [String: JSONValue]) throws {
        for (key, kind) in [("model", "a string"), ("temperature", "a number"), ("top_p", "a number"), ("max_tokens", "an integer"),
                            ("max_completion_tokens", "an integer"), ("tools", "a list"), ("response_format", "an object"), ("stop", "a string or a list")] {
            guard let value = config[key] else { continue }
            let fits = switch (key, value) {
            case ("model", .string), ("temperature", .number), ("top_p", .number), ("tools", .array), ("response_format", .object), ("stop", .string), ("stop", .array): true
            case ("max_tokens", .number(let number)), ("max_completion_tokens", .number(let number)): number.rounded() == number && number > 0
            default: false
            }
            guard fits else { throw APIError.invalidRequest("'config.\(key)' must be \(kind).", param: "config.\(key)") }
        }
    }

    static func notFound(_ name: String, _ selector: PromptSelector? = nil) -> APIError {
        var error = APIError.notFound(selector.map { selector in
            switch selector {
            case .label(let label): "The prompt '\(name)' has no label '\(label)'."
            case .version(let version): "The prompt '\(name)' has no version \(version)."
            }
        } ?? "No prompt is named '\(name)'.")
        error.envelope.error.code = "prompt_not_found"
        return error
    }

    static func protectedError(_ label: String) -> APIError {
        APIError(status: .forbidden, type: .permission, message: "The label '\(label)' is protected: only a tenant admin moves or unprotects it.", code: "protected_label")
    }

    static func json(_ version: PromptVersion) throws -> JSONValue { try JSONValue.encoding(version) }
}

extension JSONValue {
    static func encoding(_ value: some Encodable) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return try JSONDecoder().decode(JSONValue.self, from: encoder.encode(value))
    }
}

func require<T>(_ value: T?) throws -> T {
    guard let value else { throw APIError(status: .internalServerError, type: .server, message: "The registry lost track of what it wrote.") }
    return value
}

