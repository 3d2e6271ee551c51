import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird

/// `GET /openapi.json` (no key): the gateway's public contract, OpenAPI 3.1. Every public route
/// is listed here with its request body, its answers and the error envelope; a test compares the
/// list with the router's routes, so a route added without its entry fails the build's tests.
enum OpenAPIDocument {
    /// One operation: method, path (OpenAPI `{param}` form), what it does, and its body's schema.
    struct Operation {
        var method: String
        var path: String
        var summary: String
        var tag: String
        var body: JSONValue?
        var success: Int = 200
        var response: JSONValue = ["type": "object"]
        var query: [String] = []
        var public_ = false
        /// The request body's media type (a flow upload is YAML).
        var bodyType = "application/json"
    }

    static let object: JSONValue = ["type": "object"]
    static let list: JSONValue = ["type": "object", "required": ["data"], "properties": ["object": ["type": "string"], "data": ["type": "array", "items": ["type": "object"]]]]

    static let limitFields: [String: JSONValue] = [
        "rpm_limit": ["type": ["integer", "null"], "minimum": 1], "tpm_limit": ["type": ["integer", "null"], "minimum": 1],
        "max_concurrent": ["type": ["integer", "null"], "minimum": 1],
        "model_limits": ["type": ["object", "null"], "additionalProperties": [
            "type": "object", "properties": ["rpm_limit": ["type": ["integer", "null"]], "tpm_limit": ["type": ["integer", "null"]]]]],
    ]

    static let operations: [Operation] = [
        .init(method: "post", path: "/v1/chat/completions", summary: "Create a chat completion (OpenAI's API; `stream: true` for server-sent events).", tag: "inference",
              body: ["type": "object", "required": ["model", "messages"],
                     "properties": ["model": ["type": "string"], "messages": ["type": "array", "items": ["type": "object"]], "stream": ["type": "boolean"],
                                    "max_tokens": ["type": "integer"], "temperature": ["type": "number"], "conduit": ["type": "object"]]]),
        .init(method: "get", path: "/v1/models", summary: "The models (and routers) that can be served now.", tag: "inference", response: list),
        .init(method: "get", path: "/v1/models/{model}", summary: "One model.", tag: "inference"),
        .init(method: "post", path: "/v1/embeddings", summary: "Embed text (OpenAI's API).", tag: "inference",
              body: ["type": "object", "required": ["model", "input"], "properties": ["model": ["type": "string"], "input": [:]]]),
        .init(method: "post", path: "/v1/search", summary: "Hybrid search over a collection of the caller's tenant.", tag: "retrieval",
              body: ["type": "object", "required": ["collection"], "properties": ["collection": ["type": "string"], "query": ["type": "string"], "top_k": ["type": "integer"]]]),
        .init(method: "post", path: "/v1/documents", summary: "Index documents (one, or `documents`: up to 1,000).", tag: "retrieval", body: object, success: 202),
        .init(method: "delete", path: "/v1/documents/{collection}/{doc_id}", summary: "Delete a document from its collection.", tag: "retrieval", success: 202),
        .init(method: "get", path: "/v1/sessions/{id}", summary: "A conversation kept in memory.", tag: "sessions"),
        .init(method: "delete", path: "/v1/sessions/{id}", summary: "Forget a conversation.", tag: "sessions"),
        .init(method: "delete", path: "/v1/cache", summary: "Purge the tenant's semantic cache.", tag: "sessions"),
        .init(method: "get", path: "/v1/usage", summary: "Usage and cost, grouped (`group_by`), as JSON or CSV.", tag: "cost", response: list,
              query: ["from", "to", "group_by", "format"]),
        .init(method: "post", path: "/v1/budgets", summary: "Create a budget.", tag: "cost",
              body: ["type": "object", "required": ["scope", "period", "limit_usd"],
                     "properties": ["scope": ["type": "object"], "period": ["type": "string", "enum": ["day", "week", "month", "total"]], "limit_usd": ["type": "number"],
                                    "model": ["type": "string"], "name": ["type": "string"], "alert_thresholds": ["type": "array", "items": ["type": "number"]],
                                    "webhook_url": ["type": "string"]]], success: 201),
        .init(method: "get", path: "/v1/budgets", summary: "The tenant's budgets with their spend.", tag: "cost", response: list),
        .init(method: "get", path: "/v1/budgets/{id}", summary: "One budget, with its forecast.", tag: "cost"),
        .init(method: "patch", path: "/v1/budgets/{id}", summary: "Change a budget's name, limit, thresholds or webhook.", tag: "cost", body: object),
        .init(method: "delete", path: "/v1/budgets/{id}", summary: "Delete a budget.", tag: "cost"),
        .init(method: "get", path: "/v1/prompts", summary: "The tenant's prompts with their labels (`prefix` filters by folder).", tag: "prompts", response: list,
              query: ["prefix", "limit"]),
        .init(method: "post", path: "/v1/prompts", summary: "Create a prompt, or its next version (`template` for text, `messages` for chat).", tag: "prompts",
              body: ["type": "object", "required": ["name"],
                     "properties": ["name": ["type": "string"], "type": ["type": "string", "enum": ["text", "chat"]], "template": ["type": "string"],
                                    "messages": ["type": "array", "items": ["type": "object"]], "config": ["type": "object"],
                                    "labels": ["type": "array", "items": ["type": "string"]], "commit_message": ["type": "string"]]], success: 201),
        .init(method: "get", path: "/v1/prompts/{name}", summary: "One version of a prompt (`label`, default production, or `version`); folders as %2F.", tag: "prompts",
              query: ["label", "version"]),
        .init(method: "delete", path: "/v1/prompts/{name}", summary: "Delete a prompt: its labels go, its versions stay readable by number (admins).", tag: "prompts"),
        .init(method: "get", path: "/v1/prompts/{name}/versions", summary: "Every version of a prompt.", tag: "prompts", response: list),
        .init(method: "get", path: "/v1/prompts/{name}/history", summary: "Every label move of a prompt, newest first.", tag: "prompts", response: list),
        .init(method: "get", path: "/v1/prompts/{name}/diff", summary: "Two versions' templates line by line and their config's changes.", tag: "prompts",
              query: ["from", "to"]),
        .init(method: "post", path: "/v1/prompts/{name}/labels", summary: "Move (or create) a label; protected labels only for admins.", tag: "prompts",
              body: ["type": "object", "required": ["label", "version"],
                     "properties": ["label": ["type": "string"], "version": ["type": "integer"], "protected": ["type": "boolean"]]]),
        .init(method: "post", path: "/v1/prompts/{name}/render", summary: "Render a version with variables; a missing variable is a 400 naming it.", tag: "prompts",
              body: ["type": "object", "properties": ["label": ["type": "string"], "version": ["type": "integer"], "variables": ["type": "object"]]]),
        .init(method: "get", path: "/v1/experiments", summary: "The tenant's experiments.", tag: "prompts", response: list),
        .init(method: "post", path: "/v1/experiments", summary: "Split a prompt's traffic between variants (versions or labels), sticky per user or session.", tag: "prompts",
              body: ["type": "object", "required": ["prompt", "variants"],
                     "properties": ["prompt": ["type": "string"], "name": ["type": "string"], "label": ["type": "string"],
                                    "subject": ["type": "string", "enum": ["user", "session"]],
                                    "metric": ["type": "string", "enum": ["thumbs", "score", "error_rate", "latency_ms", "cost_usd"]],
                                    "variants": ["type": "array", "items": ["type": "object", "required": ["name", "weight"],
                                                                            "properties": ["name": ["type": "string"], "label": ["type": "string"],
                                                                                           "version": ["type": "integer"], "weight": ["type": "number"]]]]]],
              success: 201),
        .init(method: "get", path: "/v1/experiments/{id}", summary: "An experiment's results per variant, its statistics and a recommendation.", tag: "prompts"),
        .init(method: "post", path: "/v1/experiments/{id}/conclude", summary: "End an experiment; `move_label` moves its label to the winner.", tag: "prompts",
              body: ["type": "object", "properties": ["winner": ["type": "string"], "move_label": ["type": "boolean"]]]),
        .init(method: "post", path: "/v1/feedback", summary: "Score an answer by its request id (`thumbs` up or down, `score`, `comment`).", tag: "prompts",
              body: ["type": "object", "required": ["request_id"],
                     "properties": ["request_id": ["type": "string"], "thumbs": ["type": "string", "enum": ["up", "down"]], "score": ["type": "number"],
                                    "comment": ["type": "string"]]], success: 201),
        .init(method: "post", path: "/v1/flows", summary: "Add a flow version: its YAML as the body. A bad flow is a 400 naming the path of the problem.", tag: "flows",
              body: ["type": "string"], success: 201, bodyType: "application/yaml"),
        .init(method: "get", path: "/v1/flows", summary: "The tenant's flows and the shipped ones, each with its inputs schema.", tag: "flows", response: list),
        .init(method: "get", path: "/v1/flows/{name}", summary: "One flow: its versions, inputs schema, steps and YAML.", tag: "flows"),
        .init(method: "post", path: "/v1/flows/{name}/runs", summary: "Run a flow: `inputs` checked against its schema; the record when it ends, its id at once (`async`), or its events as SSE (`stream`).", tag: "flows",
              body: ["type": "object", "properties": ["inputs": ["type": "object"], "version": ["type": "string"], "async": ["type": "boolean"], "stream": ["type": "boolean"]]]),
        .init(method: "get", path: "/v1/flows/{name}/runs/{id}", summary: "A run's record: its status, each step's status, attempts, output and timing.", tag: "flows"),
        .init(method: "post", path: "/v1/flows/{name}/runs/{id}/cancel", summary: "Cancel a run in progress; the record as it ended.", tag: "flows"),
        .init(method: "post", path: "/v1/agents/runs", summary: "Run an agent (the shipped `agent` flow): the model calls tools until it answers; the record's output is the answer and its trace.", tag: "flows",
              body: ["type": "object", "required": ["model", "input"], "properties": [
                  "model": ["type": "string"], "input": ["type": "string"], "system": ["type": "string"], "messages": ["type": "array"],
                  "tools": ["type": "array", "items": ["type": "string"]], "max_steps": ["type": "integer"], "max_seconds": ["type": "number"],
                  "max_cost_usd": ["type": "number"], "async": ["type": "boolean"], "stream": ["type": "boolean"]]]),
        .init(method: "get", path: "/v1/agents/runs/{id}", summary: "An agent run's record.", tag: "flows"),
        .init(method: "post", path: "/v1/agents/runs/{id}/cancel", summary: "Cancel an agent run in progress; the record as it ended.", tag: "flows"),
        .init(method: "get", path: "/v1/agents/tools", summary: "The tools an agent may be given: the built-ins and the MCP servers' (`server__tool`).", tag: "flows", response: list),
        .init(method: "post", path: "/v1/tenants", summary: "Create a tenant (platform admins).", tag: "admin",
              body: ["type": "object", "required": ["name"], "properties": .object(["name": ["type": "string"], "id": ["type": "string"]].merging(limitFields) { $1 })],
              success: 201),
        .init(method: "get", path: "/v1/tenants", summary: "Every tenant (platform admins).", tag: "admin", response: list),
        .init(method: "get", path: "/v1/tenants/{id}", summary: "One tenant and its limits (its admins, platform admins).", tag: "admin"),
        .init(method: "patch", path: "/v1/tenants/{id}", summary: "Rename a tenant or set its limits (platform admins).", tag: "admin",
              body: ["type": "object", "properties": .object(["name": ["type": "string"]].merging(limitFields) { $1 })]),
        .init(method: "post", path: "/v1/keys", summary: "Create an API key; its secret is in this answer only.", tag: "admin",
              body: ["type": "object", "required": ["role"],
                     "properties": .object([
                        "tenant": ["type": "string"], "role": ["type": "string", "enum": .array(Role.allCases.map { .string($0.rawValue) })],
                        "name": ["type": "string"], "team": ["type": "string"], "user": ["type": "string"], "tags": ["type": "array", "items": ["type": "string"]],
                        "expires_at": ["type": "string", "format": "date-time"], "models": ["type": ["array", "null"], "items": ["type": "string"]],
                        "metadata": ["type": "object"], "chat_defaults": ["type": ["object", "null"]],
                     ].merging(limitFields) { $1 })],
              success: 201),
        .init(method: "get", path: "/v1/keys", summary: "The tenant's keys (never their secrets).", tag: "admin", response: list, query: ["tenant", "all", "cursor", "limit"]),
        .init(method: "get", path: "/v1/keys/{id}", summary: "One key.", tag: "admin"),
        .init(method: "patch", path: "/v1/keys/{id}", summary: "Change a key's role, name, team, user, tags, expiry, models, limits or metadata.", tag: "admin", body: object),
        .init(method: "delete", path: "/v1/keys/{id}", summary: "Revoke a key: it fails on every gateway within a second.", tag: "admin"),
        .init(method: "post", path: "/v1/keys/{id}/rotate", summary: "A new secret; the old one works for `grace_seconds`.", tag: "admin",
              body: ["type": "object", "properties": ["grace_seconds": ["type": "integer", "minimum": 0]]]),
        .init(method: "post", path: "/v1/teams", summary: "Create a team in the tenant (tenant admins).", tag: "admin", body: ["type": "object", "required": ["name"],
              "properties": ["id": ["type": "string"], "name": ["type": "string"], "metadata": ["type": ["object", "null"]]]], success: 201, query: ["tenant"]),
        .init(method: "get", path: "/v1/teams", summary: "The tenant's teams.", tag: "admin", response: list, query: ["tenant", "cursor", "limit"]),
        .init(method: "get", path: "/v1/teams/{id}", summary: "One team.", tag: "admin", query: ["tenant"]),
        .init(method: "patch", path: "/v1/teams/{id}", summary: "Rename a team or change its metadata.", tag: "admin", body: object, query: ["tenant"]),
        .init(method: "delete", path: "/v1/teams/{id}", summary: "Delete a team without users.", tag: "admin", query: ["tenant"]),
        .init(method: "post", path: "/v1/users", summary: "Add a user to the tenant (tenant admins).", tag: "admin", body: ["type": "object", "required": ["id"],
              "properties": ["id": ["type": "string"], "name": ["type": ["string", "null"]], "email": ["type": ["string", "null"]], "team": ["type": ["string", "null"]],
                             "metadata": ["type": ["object", "null"]]]], success: 201, query: ["tenant"]),
        .init(method: "get", path: "/v1/users", summary: "The tenant's users (`team` filters).", tag: "admin", response: list, query: ["tenant", "team", "cursor", "limit"]),
        .init(method: "get", path: "/v1/users/{id}", summary: "One user.", tag: "admin", query: ["tenant"]),
        .init(method: "patch", path: "/v1/users/{id}", summary: "Change a user's name, email, team or metadata.", tag: "admin", body: object, query: ["tenant"]),
        .init(method: "delete", path: "/v1/users/{id}", summary: "Remove a user.", tag: "admin", query: ["tenant"]),
        .init(method: "get", path: "/v1/audit", summary: "The tenant's audit trail, newest first.", tag: "admin", response: list,
              query: ["tenant", "action", "from", "to", "cursor", "limit"]),
        .init(method: "get", path: "/v1/audit/verify", summary: "Walk the tenant's audit hash chain.", tag: "admin", query: ["tenant"]),
        .init(method: "get", path: "/openapi.json", summary: "This document.", tag: "meta", public_: true),
    ]

    static let errorEnvelope: JSONValue = [
        "type": "object", "required": ["error"],
        "properties": ["error": ["type": "object", "required": ["message", "type"],
                                 "properties": ["message": ["type": "string"], "type": ["type": "string"], "param": ["type": ["string", "null"]], "code": ["type": ["string", "null"]]]]],
    ]

    static func document() -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for operation in operations {
            var entry: [String: JSONValue] = [
                "summary": .string(operation.summary), "tags": [.string(operation.tag)],
                "operationId": .string(operation.method + operation.path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "")),
            ]
            var parameters: [JSONValue] = operation.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { part in
                ["name": .string(String(part.dropFirst().dropLast())), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            parameters += operation.query.map { ["name": .string($0), "in": "query", "required": false, "schema": ["type": "string"]] }
            if !parameters.isEmpty { entry["parameters"] = .array(parameters) }
            if let body = operation.body {
                entry["requestBody"] = ["required": true, "content": .object([operation.bodyType: ["schema": body]])]
            }
            var responses: [String: JSONValue] = [
                String(operation.success): ["description": "Success.", "content": ["application/json": ["schema": operation.response]]],
            ]
            if !operation.public_ {
                for (status, meaning) in [("400", "The request is malformed; `param` names the field."), ("401", "No key, or not a valid one."),
                                          ("403", "The key's role may not do this."), ("404", "No such resource in the caller's tenant."),
                                          ("429", "A rate limit or budget: see `Retry-After`.")] {
                    responses[status] = ["description": .string(meaning), "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
                }
                entry["security"] = [["bearer": []]]
            }
            entry["responses"] = .object(responses)
            var path = paths[operation.path]?.objectValue ?? [:]
            path[operation.method] = .object(entry)
            paths[operation.path] = .object(path)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Conduit gateway", "version": "1", "description": "The OpenAI-compatible API and Conduit's own: retrieval, sessions, cost, keys, audit."],
            "servers": [["url": "/"]],
            "paths": .object(paths),
            "components": [
                "schemas": ["Error": errorEnvelope],
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "An API key (`cdt-…`) or the identity provider's JWT."]],
            ],
        ]
    }

    static let encoded: [UInt8] = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(document())) ?? Data("{}".utf8))
    }()

    static func addRoute(to router: some RouterMethods<ConduitRequestContext>) {
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encoded)))
        }
    }
}
