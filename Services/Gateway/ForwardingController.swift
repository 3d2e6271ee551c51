import ConduitHTTP
import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// Routes the gateway passes to an internal service unchanged, with the caller's identity in
/// the `X-Conduit-*` headers: the chat path and the model list to the orchestrator,
/// `/v1/embeddings` to the embedder, `/v1/search` to the retriever (which scopes it to the
/// caller's tenant), sessions and the cache purge to the orchestrator, `/v1/usage` and
/// `/v1/budgets` to the cost-service. Event streams are relayed as they arrive; a client that goes away closes
/// the hop behind it, which cancels the provider call.
struct ForwardingController: Sendable {
    let services: any ServiceForwarding
    /// The whole chat exchange with the orchestrator, stream included: longer than the
    /// orchestrator's own provider limits with their retries, so it only ends a hop that hangs.
    var chatTimeout: Duration = .seconds(900)

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/chat/completions") { request, context in
            try Self.allow(.infer, context)
            return try await forward(request, context, to: .orchestrator, path: "/v1/chat/completions", timeout: chatTimeout)
        }
        router.get("/v1/models") { request, context in
            try Self.allow(.infer, context)
            guard let allowed = context.identity?.limits.allowedModels else {
                return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/models")
            }
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/models") { Self.listing($0, only: Set(allowed)) }
        }
        router.get("/v1/models/:model") { request, context in
            try Self.allow(.infer, context)
            let model = try context.pathParameter("model")
            if let allowed = context.identity?.limits.allowedModels, !allowed.contains(model) {
                throw APIError(status: .notFound, type: .invalidRequest, message: "The model '\(model)' does not exist or this key may not use it.",
                               param: "model", code: "model_not_found")
            }
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/models/" + escapedPathSegment(model))
        }
        router.post("/v1/embeddings") { request, context in
            try Self.allow(.infer, context)
            return try await forward(request, context, to: .embedder, path: "/v1/embeddings")
        }
        router.post("/v1/search") { request, context in
            try Self.allow(.search, context)
            return try await forward(request, context, to: .retriever, path: "/v1/search")
        }
        for method in ["GET", "DELETE"] {
            router.on("/v1/sessions/:id", method: .init(method)!) { request, context in
                try Self.allow(.writeDocuments, context)
                return try await forward(request, context, to: .orchestrator, method: method, path: "/v1/sessions/" + escapedPathSegment(try context.pathParameter("id")))
            }
        }
        router.delete("/v1/cache") { request, context in
            try Self.allow(.writeDocuments, context)
            return try await forward(request, context, to: .orchestrator, method: "DELETE", path: "/v1/cache")
        }
        router.get("/v1/usage") { request, context in
            try Self.allow(.readUsage, context)
            return try await forward(request, context, to: .costService, method: "GET", path: "/v1/usage" + Self.query(of: request))
        }
        router.post("/v1/budgets") { request, context in
            try Self.allow(.manageBudgets, context)
            return try await forward(request, context, to: .costService, path: "/v1/budgets")
        }
        router.get("/v1/budgets") { request, context in
            try Self.allow(.readUsage, context)
            return try await forward(request, context, to: .costService, method: "GET", path: "/v1/budgets")
        }
        for method in ["GET", "PATCH", "DELETE"] {
            router.on("/v1/budgets/:id", method: .init(method)!) { request, context in
                try Self.allow(method == "GET" ? .readUsage : .manageBudgets, context)
                return try await forward(request, context, to: .costService, method: method, path: "/v1/budgets/" + escapedPathSegment(try context.pathParameter("id")))
            }
        }
    }

    /// Prompts, experiments and feedback go to the prompt-registry, which checks what needs
    /// more than reading (writing versions, protected labels) against the signed roles.
    /// `/v1/flows`: uploads, listings and runs, on the orchestrator. A run waits up to the chat
    /// timeout (a flow's steps are model calls); a streamed run passes through as it comes.
    func addFlowRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.get("/v1/flows") { request, context in
            try Self.allow(.readFlows, context)
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/flows")
        }
        router.post("/v1/flows") { request, context in
            try Self.allow(.writeFlows, context)
            return try await forward(request, context, to: .orchestrator, path: "/v1/flows")
        }
        router.get("/v1/flows/:name") { request, context in
            try Self.allow(.readFlows, context)
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/flows/" + escapedPathSegment(try context.pathParameter("name")))
        }
        router.post("/v1/flows/:name/runs") { request, context in
            try Self.allow(.runFlows, context)
            let name = escapedPathSegment(try context.pathParameter("name"))
            return try await forward(request, context, to: .orchestrator, path: "/v1/flows/\(name)/runs", timeout: chatTimeout)
        }
        router.get("/v1/flows/:name/runs/:id") { request, context in
            try Self.allow(.readFlows, context)
            let name = escapedPathSegment(try context.pathParameter("name"))
            let id = escapedPathSegment(try context.pathParameter("id"))
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/flows/\(name)/runs/\(id)")
        }
        router.post("/v1/flows/:name/runs/:id/cancel") { request, context in
            try Self.allow(.runFlows, context)
            let name = escapedPathSegment(try context.pathParameter("name"))
            let id = escapedPathSegment(try context.pathParameter("id"))
            return try await forward(request, context, to: .orchestrator, path: "/v1/flows/\(name)/runs/\(id)/cancel")
        }
        // Agents are runs of the shipped `agent` flow, with the same roles.
        router.post("/v1/agents/runs") { request, context in
            try Self.allow(.runFlows, context)
            return try await forward(request, context, to: .orchestrator, path: "/v1/agents/runs", timeout: chatTimeout)
        }
        router.get("/v1/agents/runs/:id") { request, context in
            try Self.allow(.readFlows, context)
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/agents/runs/" + escapedPathSegment(try context.pathParameter("id")))
        }
        router.post("/v1/agents/runs/:id/cancel") { request, context in
            try Self.allow(.runFlows, context)
            return try await forward(request, context, to: .orchestrator, path: "/v1/agents/runs/\(escapedPathSegment(try context.pathParameter("id")))/cancel")
        }
        router.get("/v1/agents/tools") { request, context in
            try Self.allow(.readFlows, context)
            return try await forward(request, context, to: .orchestrator, method: "GET", path: "/v1/agents/tools")
        }
    }

    func addPromptRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.get("/v1/prompts") { request, context in
            try Self.allow(.readPrompts, context)
            return try await forward(request, context, to: .promptRegistry, method: "GET", path: "/v1/prompts" + Self.query(of: request))
        }
        router.post("/v1/prompts") { request, context in
            try Self.allow(.writePrompts, context)
            return try await forward(request, context, to: .promptRegistry, path: "/v1/prompts")
        }
        // A name with folders (`support/answer`, or `support%2Fanswer`) and the operation after
        // it (`/versions`, `/labels` …): the registry reads both from the path's end.
        for method in ["GET", "POST", "DELETE"] {
            router.on("/v1/prompts/**", method: .init(method)!) { request, context in
                try Self.allow(.readPrompts, context)
                let tail = context.parameters.getCatchAll()
                    .flatMap { (String($0).removingPercentEncoding ?? String($0)).split(separator: "/", omittingEmptySubsequences: false) }
                    .map { escapedPathSegment(String($0)) }.joined(separator: "/")
                return try await forward(request, context, to: .promptRegistry, method: method, path: "/v1/prompts/" + tail + Self.query(of: request))
            }
        }
        router.get("/v1/experiments") { request, context in
            try Self.allow(.readPrompts, context)
            return try await forward(request, context, to: .promptRegistry, method: "GET", path: "/v1/experiments")
        }
        router.post("/v1/experiments") { request, context in
            try Self.allow(.writePrompts, context)
            return try await forward(request, context, to: .promptRegistry, path: "/v1/experiments")
        }
        router.get("/v1/experiments/:id") { request, context in
            try Self.allow(.readPrompts, context)
            return try await forward(request, context, to: .promptRegistry, method: "GET", path: "/v1/experiments/" + escapedPathSegment(try context.pathParameter("id")))
        }
        router.post("/v1/experiments/:id/conclude") { request, context in
            try Self.allow(.writePrompts, context)
            let id = escapedPathSegment(try context.pathParameter("id"))
            return try await forward(request, context, to: .promptRegistry, path: "/v1/experiments/\(id)/conclude")
        }
        router.post("/v1/feedback") { request, context in
            try Self.allow(.infer, context)
            return try await forward(request, context, to: .promptRegistry, path: "/v1/feedback")
        }
    }

    /// The route's permission (see `Role`), or a 403 naming it.
    static func allow(_ permission: Permission, _ context: ConduitRequestContext) throws {
        try context.require(permission, "This key's role may not do this (it needs the '\(permission.rawValue)' permission).")
    }

    /// Request headers of the caller's that mean something to the services behind.
    static let passedRequestHeaders = ["X-Conduit-Session-Id", "X-Conduit-Session", "Accept", ConduitHeader.reportUsage]
    /// Response headers passed back to the caller.
    static let passedResponseHeaders = [
        "Content-Disposition", "X-Conduit-Deployment", "Retry-After", "X-Conduit-Cache", "X-Conduit-Cache-Similarity", "X-Conduit-Session-Id",
        "X-Conduit-Route", ConduitHeader.usageTokens, "X-Conduit-Prompt-Unused-Variables",
    ]

    /// The model list with only the models a key may use.
    static func listing(_ bytes: [UInt8], only allowed: Set<String>) -> [UInt8] {
        guard case .object(var list) = JSONValue.parse(bytes) ?? .null, let data = list["data"]?.arrayValue else { return bytes }
        list["data"] = JSONValue.array(data.filter { $0["id"]?.stringValue.map(allowed.contains) ?? false })
        return (try? Array(JSONEncoder().encode(JSONValue.object(list)))) ?? bytes
    }

    /// `?` and the request's query string, as it came, when it has one.
    static func query(of request: Request) -> String {
        guard let query = request.uri.query, !query.isEmpty else { return "" }
        return "?" + query
    }

    /// The largest answer that is not a stream (64 MiB).
    static let maxBodyBytes = 64 << 20

    /// `timeout` bounds the whole exchange, a relayed stream included.
    /// `rewrite` changes an answer that is not a stream.
    func forward(_ request: Request, _ context: ConduitRequestContext, to service: ServiceName, method: String = "POST", path: String, timeout: Duration = .seconds(60),
                 rewrite: (([UInt8]) -> [UInt8])? = nil) async throws -> Response {
        _ = try context.caller()
        let body = method == "GET" || method == "DELETE" ? nil : Array(try await request.body.collect(upTo: context.maxUploadSize).readableBytesView)
        var passed: [(name: String, value: String)] = []
        for name in Self.passedRequestHeaders {
            if let value = request.headers[HTTPField.Name(name)!] { passed.append((name, value)) }
        }
        let response: ForwardedResponse
        do {
            response = try await services.forward(
                to: service, method: method, path: path, body: body,
                headers: ServiceClient.propagatedHeaders(from: context, extra: passed), timeout: timeout)
        } catch {
            throw APIError(status: .badGateway, type: .upstream, message: "The \(service.rawValue) service could not be reached.", code: "service_unavailable")
        }
        var headers = HTTPFields()
        let contentType = response.header("Content-Type") ?? "application/json"
        headers[.contentType] = contentType
        for name in Self.passedResponseHeaders {
            if let value = response.header(name) { headers[HTTPField.Name(name)!] = value }
        }
        guard contentType.hasPrefix("text/event-stream") else {
            var bytes: [UInt8] = []
            for try await chunk in response.body {
                guard bytes.count + chunk.count <= Self.maxBodyBytes else {
                    throw APIError(status: .badGateway, type: .upstream, message: "The \(service.rawValue) service answered with more than \(Self.maxBodyBytes >> 20) MiB.", code: "upstream_too_large")
                }
                bytes += chunk
            }
            if let rewrite, response.status == 200 { bytes = rewrite(bytes) }
            return Response(status: .init(code: response.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        headers[.cacheControl] = "no-cache"
        let upstream = response.body
        return Response(status: .init(code: response.status), headers: headers, body: ResponseBody { writer in
            // Leaving this loop early (the client went away) drops the upstream body, which
            // closes the connection to the orchestrator and so cancels the provider call.
            for try await chunk in upstream {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        })
    }
}
