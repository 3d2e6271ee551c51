import ConduitProtocol
import Foundation
import HTTP
import Kafka
import Logging
import Postgres
import Testing
import TestSupport

/// RAG, conversation memory and the semantic cache through the real services: documents go in
/// through the gateway and Kafka, the embedder and retriever index them, and the orchestrator
/// answers with a scripted model (a local server speaking OpenAI's wire format, so answers are
/// predictable) whose replies depend only on what the orchestrator sends it.
/// One test at a time: each starts several services, and two cores are shared by the whole suite.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct GroundedChatProcessTests {
    /// The scripted model: it quotes source [1] when given sources, says the documents do not
    /// answer when told so, rewrites and summarises when asked, remembers "My name is X" from the
    /// conversation it is sent, and otherwise echoes the question.
    final class ScriptedModel: Sendable {
        let server: TestHTTPServer
        private let received = Locked<[JSONValue]>([])
        var requests: [JSONValue] { received.withLock { $0 } }

        init() throws {
            let received = self.received
            server = try TestHTTPServer { request, connection in
                guard let body = JSONValue.parse(request.body) else {
                    connection.respond(status: 400, body: Array(#"{"error":{"message":"bad json","type":"invalid_request_error"}}"#.utf8))
                    return
                }
                received.withLock { $0.append(body) }
                let messages = body["messages"]?.arrayValue ?? []
                let system = messages.filter { $0["role"]?.stringValue == "system" }.compactMap { $0["content"]?.stringValue }.joined(separator: "\n")
                let users = messages.filter { $0["role"]?.stringValue == "user" }.compactMap { $0["content"]?.stringValue }
                let answer = Self.answer(system: system, users: users)
                let usage = #"{"prompt_tokens":20,"completion_tokens":\#(answer.split(separator: " ").count)}"#
                if body["stream"] == true {
                    connection.startChunked(contentType: "text/event-stream")
                    func frame(_ delta: String, finish: String? = nil) -> String {
                        #"data: {"id":"s-1","object":"chat.completion.chunk","created":1,"model":"scripted","choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(finish.map { "\"\($0)\"" } ?? "null")}]}"# + "\n\n"
                    }
                    connection.writeChunk(frame(#"{"role":"assistant","content":""}"#))
                    for word in answer.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
                        connection.writeChunk(frame(JSONValue.object(["content": .string((word.offset == 0 ? "" : " ") + word.element)]).jsonString))
                    }
                    connection.writeChunk(frame("{}", finish: "stop"))
                    connection.writeChunk(#"data: {"id":"s-1","object":"chat.completion.chunk","created":1,"model":"scripted","choices":[],"usage":\#(usage)}"# + "\n\n")
                    connection.writeChunk("data: [DONE]\n\n")
                    connection.endChunks()
                } else {
                    let message = JSONValue.object(["role": "assistant", "content": .string(answer)]).jsonString
                    connection.respond(headers: ["Content-Type": "application/json"], body: Array(
                        #"{"id":"c-1","object":"chat.completion","created":1,"model":"scripted","choices":[{"index":0,"message":\#(message),"finish_reason":"stop"}],"usage":\#(usage)}"#.utf8))
                }
            }
        }

        static func answer(system: String, users: [String]) -> String {
            let last = users.last ?? ""
            if system.contains("Rewrite the user's last question") {
                let previous = last.components(separatedBy: "Conversation:\n").last?.components(separatedBy: "\n").first { $0.hasPrefix("user: ") } ?? ""
                let question = last.components(separatedBy: "Last question: ").last?.components(separatedBy: "\n").first ?? ""
                return "standalone: " + previous.dropFirst(6) + " " + question
            }
            if system.contains("Summarise the conversation") { return "Ada listed items." }
            if let range = system.range(of: "\n[1]") {
                let afterTitle = system[range.upperBound...].drop { $0 != "\n" }.dropFirst()
                let sentence = afterTitle.prefix { $0 != "." }
                return "From the documents: \(sentence). [1]"
            }
            if system.contains("No document in the collection") { return "The documents do not say." }
            for earlier in users.dropLast() where earlier.hasPrefix("My name is ") {
                if last == "What is my name?" { return "Your name is \(earlier.dropFirst(11).prefix { $0 != "." })." }
            }
            if last.hasPrefix("Remember item") { return "Noted." }
            return "Echo: \(last)"
        }
    }

    struct Reply {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String
        var json: JSONValue? { JSONValue.parse(Array(body.utf8)) }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    static let http = HTTPClient(logger: Logger(label: "grounded-test"))

    static func call(_ base: String, _ method: String, _ path: String, key: String, json: String? = nil, headers: [(name: String, value: String)] = []) async throws -> Reply {
        let response = try await http.execute(HTTPRequest(
            method: method, url: base + path,
            headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")] + headers,
            body: json.map { Array($0.utf8) }, timeout: .seconds(60)))
        return Reply(status: response.status, headers: response.headers, body: String(decoding: try await response.body.collect(upTo: 1 << 22), as: UTF8.self))
    }

    static func chat(_ gateway: String, key: String, model: String = "scripted", _ messages: [(String, String)], stream: Bool = false, conduit: String? = nil, headers: [(name: String, value: String)] = []) async throws -> Reply {
        let list = messages.map { JSONValue.object(["role": .string($0.0), "content": .string($0.1)]).jsonString }.joined(separator: ",")
        var json = #"{"model":"\#(model)","temperature":0,"messages":[\#(list)]"#
        if stream { json += #","stream":true,"stream_options":{"include_usage":true}"# }
        if let conduit { json += #","conduit":\#(conduit)"# }
        return try await call(gateway, "POST", "/v1/chat/completions", key: key, json: json + "}", headers: headers)
    }

    /// The `data:` payloads of an SSE body, `[DONE]` included.
    static func events(_ body: String) -> [String] {
        body.components(separatedBy: "\n\n").compactMap { frame in
            frame.hasPrefix("data: ") ? String(frame.dropFirst(6)) : nil
        }
    }

    static func catalog(_ model: ScriptedModel) throws -> String {
        let path = TestEnvironment.scratchDirectory("grounded") + "/models-\(UUID().uuidString.prefix(6)).yaml"
        try """
        models:
          - name: scripted
            deployments:
              - {id: scripted, provider: openai, model: scripted, base_url: "\(model.server.baseURL)/v1", context_window: 8192, max_tokens: 256}
          - name: tiny-window
            deployments:
              - {id: tiny-window, provider: openai, model: scripted, base_url: "\(model.server.baseURL)/v1", context_window: 400, max_tokens: 50}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Tokens of stored messages as the orchestrator estimates them for a model without a tokenizer.
    static func estimatedTokens(_ messages: [JSONValue]) -> Int {
        messages.reduce(0) { $0 + (($1["content"]?.stringValue ?? "").utf8.count + 2) / 3 + 8 }
    }

    @Test func answersCiteIndexedDocumentsAndSessionsRememberAndSummarise() async throws {
        let model = try ScriptedModel()
        let tenant = TestEnvironment.uniqueName("tenant")
        let requests = TestEnvironment.uniqueName("conduit.test.requests")
        let chunks = TestEnvironment.uniqueName("conduit.test.chunks")
        let key = "cdt-test-\(UUID().uuidString)"
        let (embedder, retriever) = try ServiceProcessTests.indexingServices(portOffset: 70, requests: requests, chunks: chunks)
        defer { embedder.process.signal(SIGKILL); retriever.process.signal(SIGKILL) }
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: 70, extraEnvironment: [
            "CONDUIT_MODEL_CATALOG": try Self.catalog(model), "CONDUIT_EMBEDDER_URL": embedder.base, "CONDUIT_RETRIEVER_URL": retriever.base,
            "CONDUIT_CACHE_ENABLED": "false",
        ])
        defer { orchestrator.process.signal(SIGKILL) }
        let gatewayService = try ServiceProcessTests.RunningService("gateway", portOffset: 70, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": key, "CONDUIT_ADMIN_TENANT": tenant, "CONDUIT_ORCHESTRATOR_URL": orchestrator.base,
            "CONDUIT_RETRIEVER_URL": retriever.base, "CONDUIT_EMBEDDER_URL": embedder.base, "CONDUIT_GATEWAY_INDEXING_TOPIC": requests,
        ])
        defer { gatewayService.process.signal(SIGKILL) }
        for service in [embedder, retriever, orchestrator, gatewayService] { try await service.waitUntilReady() }
        let gateway = gatewayService.base

        // Two documents through the gateway → Kafka → embedder → retriever.
        let zephyr = "The Zephyr X2 headphones come with a warranty of 24 months. Their battery lasts 30 hours on a single charge. Replacement ear cushions are sold separately."
        let published = try await Self.call(gateway, "POST", "/v1/documents", key: key, json: """
            {"documents":[
              {"collection":"kb","doc_id":"zephyr","text":"\(zephyr)","metadata":{"title":"Zephyr X2 manual"}},
              {"collection":"kb","doc_id":"orbit","text":"Planets orbit the sun along elliptical paths described by Kepler's laws."}
            ]}
            """)
        #expect(published.status == 202)
        #expect(try await eventually(within: .seconds(90)) {
            let stats = try await retriever.get("/v1/collections/kb", tenant: tenant)
            return JSONValue.parse(Array(stats.body.utf8))?["documents"]?.intValue == 2
        })

        // A grounded answer cites the indexed chunk, with offsets that point into the document.
        let rag = #"{"rag":{"collection":"kb","top_k":4}}"#
        let answer = try await Self.chat(gateway, key: key, [("user", "How long is the warranty on the Zephyr X2 headphones?")], conduit: rag)
        #expect(answer.status == 200, "\(answer.body)")
        let content = answer.json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
        #expect(content.contains("warranty of 24 months") && content.contains("[1]"))
        let citation = try #require(answer.json?["conduit"]?["citations"]?[0])
        #expect(citation["document_id"]?.stringValue == "zephyr")
        #expect(citation["chunk_id"]?.stringValue?.hasPrefix("zephyr#") == true)
        #expect(citation["title"]?.stringValue == "Zephyr X2 manual")
        #expect(citation["cited"] == true)
        let start = try #require(citation["start"]?.intValue), end = try #require(citation["end"]?.intValue)
        let scalars = Array(zephyr.unicodeScalars)
        var span = String.UnicodeScalarView()
        span.append(contentsOf: scalars[start..<end])
        #expect(String(span) == citation["quote"]?.stringValue)
        #expect(citation["quote"]?.stringValue == "The Zephyr X2 headphones come with a warranty of 24 months.")
        #expect((citation["scores"]?["vector"]?.doubleValue ?? 0) > 0.3)
        #expect((answer.json?["conduit"]?["confidence"]?.doubleValue ?? 0) > 0.6)

        // Nothing relevant: the model is told so, and no citation is invented.
        let unrelated = try await Self.chat(gateway, key: key, [("user", "What is a good recipe for banana bread?")], conduit: rag)
        #expect(unrelated.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "The documents do not say.")
        #expect(unrelated.json?["conduit"]?["citations"]?.arrayValue?.isEmpty == true)
        #expect(unrelated.json?["conduit"]?["retrieval"]?["used"]?.intValue == 0)
        #expect(unrelated.json?["conduit"]?["retrieval"]?["note"]?.stringValue != nil)
        #expect(unrelated.json?["conduit"]?["confidence"]?.doubleValue == 0)

        // A key whose defaults name the collection gets grounded answers without asking.
        let postgres = RetrieverProcessTests.postgres()
        let postgresTask = Task { try await postgres.run() }
        defer { postgresTask.cancel() }
        let defaultsKey = "cdt-test-\(UUID().uuidString)"
        try await postgres.query("""
            INSERT INTO gateway.api_keys (id, tenant_id, key_hash, roles, chat_defaults)
            VALUES ($1, $2, sha256(convert_to($3, 'UTF8')), '{developer}', '{"rag":{"collection":"kb"}}')
            """, TestEnvironment.uniqueName("key"), tenant, defaultsKey)
        let byDefault = try await Self.chat(gateway, key: defaultsKey, [("user", "How long is the warranty on the Zephyr X2 headphones?")])
        #expect(byDefault.json?["conduit"]?["citations"]?[0]?["document_id"]?.stringValue == "zephyr", "\(byDefault.body)")
        // The request's own settings win over the key's.
        let overridden = try await Self.chat(gateway, key: defaultsKey, [("user", "How long is the warranty on the Zephyr X2 headphones?")], conduit: #"{"rag":{"collection":"nope"}}"#)
        #expect(overridden.status == 404)

        // Bad retrieval settings are the caller's error, with the field named.
        let missing = try await Self.chat(gateway, key: key, [("user", "Anything?")], conduit: #"{"rag":{"collection":"nope"}}"#)
        #expect(missing.status == 404 && missing.json?["error"]?["param"]?.stringValue?.hasPrefix("conduit.rag") == true, "\(missing.body)")
        let wrongType = try await Self.chat(gateway, key: key, [("user", "Anything?")], conduit: #"{"rag":{"collection":5}}"#)
        #expect(wrongType.status == 400 && wrongType.json?["error"]?["type"]?.stringValue == "invalid_request_error")
        let tooMany = try await Self.chat(gateway, key: key, [("user", "Anything?")], conduit: #"{"rag":{"collection":"kb","top_k":500}}"#)
        #expect(tooMany.status == 400 && tooMany.json?["error"]?["param"]?.stringValue == "conduit.rag.top_k")

        // Streaming: the citations ride on the chunk with the finish reason; usage comes after it.
        let streamed = try await Self.chat(gateway, key: key, [("user", "How long is the warranty on the Zephyr X2 headphones?")], stream: true, conduit: rag)
        let events = Self.events(streamed.body)
        #expect(events.last == "[DONE]")
        let streamedChunks = events.dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
        let finish = try #require(streamedChunks.first { $0["choices"]?[0]?["finish_reason"]?.stringValue != nil })
        #expect(finish["conduit"]?["citations"]?[0]?["document_id"]?.stringValue == "zephyr")
        #expect(streamedChunks.last?["usage"]?["prompt_tokens"] != nil)
        #expect(streamedChunks.dropLast().allSatisfy { $0["choices"]?.arrayValue?.isEmpty == false })

        // Memory: the second request carries only the new message; the model gets the first turn.
        let first = try await Self.chat(gateway, key: key, [("user", "My name is Ada.")], conduit: #"{"session_id":"s-memory"}"#)
        #expect(first.header("X-Conduit-Session-Id") == "s-memory")
        let second = try await Self.chat(gateway, key: key, [("user", "What is my name?")], conduit: #"{"session_id":"s-memory"}"#)
        #expect(second.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Your name is Ada.")
        let session = try await Self.call(gateway, "GET", "/v1/sessions/s-memory", key: key)
        #expect(session.json?["messages"]?.arrayValue?.compactMap { $0["content"]?.stringValue } == ["My name is Ada.", "Echo: My name is Ada.", "What is my name?", "Your name is Ada."])
        // The session header, and the `user` field with `X-Conduit-Session: user`, name it as well.
        let byHeader = try await Self.chat(gateway, key: key, [("user", "What is my name?")], headers: [("X-Conduit-Session-Id", "s-memory")])
        #expect(byHeader.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Your name is Ada.")
        let byUser = try await Self.call(gateway, "POST", "/v1/chat/completions", key: key,
                                         json: #"{"model":"scripted","user":"s-memory","messages":[{"role":"user","content":"What is my name?"}]}"#,
                                         headers: [("X-Conduit-Session", "user")])
        #expect(byUser.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Your name is Ada.")
        #expect(byUser.header("X-Conduit-Session-Id") == "s-memory")
        #expect(try await Self.call(gateway, "DELETE", "/v1/sessions/s-memory", key: key).status == 200)
        #expect(try await Self.call(gateway, "GET", "/v1/sessions/s-memory", key: key).status == 404)
        #expect(try await Self.chat(gateway, key: key, [("user", "hi")], conduit: #"{"session_id":"bad id!"}"#).status == 400)

        // A follow-up that leans on the previous turn is rewritten before retrieval.
        _ = try await Self.chat(gateway, key: key, [("user", "How long is the warranty on the Zephyr X2 headphones?")], conduit: #"{"session_id":"s-rag","rag":{"collection":"kb"}}"#)
        let followUp = try await Self.chat(gateway, key: key, [("user", "And how long does its battery last?")], conduit: #"{"session_id":"s-rag","rag":{"collection":"kb"}}"#)
        let retrieval = followUp.json?["conduit"]?["retrieval"]
        #expect(retrieval?["rewritten"] == true)
        #expect(retrieval?["query"]?.stringValue == "standalone: How long is the warranty on the Zephyr X2 headphones? And how long does its battery last?")
        #expect(followUp.json?["conduit"]?["citations"]?[0]?["document_id"]?.stringValue == "zephyr")

        // Summarisation: a model with a 400-token window leaves history 175 tokens; past that the
        // older turns become a summary and the session comes back under the budget.
        for item in 1...8 {
            let turn = try await Self.chat(gateway, key: key, model: "tiny-window", [("user", "Remember item \(item): a blue ceramic mug from the old market.")], conduit: #"{"session_id":"s-long"}"#)
            #expect(turn.status == 200)
        }
        #expect(try await eventually(within: .seconds(60)) {
            let stored = try await Self.call(gateway, "GET", "/v1/sessions/s-long", key: key).json?["messages"]?.arrayValue ?? []
            return stored.first?["name"]?.stringValue == "conduit_summary" && Self.estimatedTokens(stored) <= 175
        })
        let summarised = try await Self.call(gateway, "GET", "/v1/sessions/s-long", key: key)
        #expect(summarised.json?["summary"]?.stringValue?.contains("Ada listed items.") == true)
        #expect(summarised.json?["messages"]?.arrayValue?.last?["content"]?.stringValue == "Noted.")
    }
}

extension ServiceProcessTests.RunningService {
    func get(_ path: String, tenant: String) async throws -> (status: Int, body: String) {
        let response = try await http.execute(HTTPRequest(url: base + path, headers: TestIdentity.headers(tenant: tenant), timeout: .seconds(10)))
        return (response.status, String(decoding: try await response.body.collect(upTo: 1 << 22), as: UTF8.self))
    }
}

extension GroundedChatProcessTests {
    @Test func theSemanticCacheHitsOnAParaphraseOnlyInItsTenantAndNeverOnTheNegation() async throws {
        let model = try ScriptedModel()
        let tenant = TestEnvironment.uniqueName("tenant"), other = TestEnvironment.uniqueName("other")
        let key = "cdt-test-\(UUID().uuidString)", otherKey = "cdt-test-\(UUID().uuidString)"
        let usageTopic = TestEnvironment.uniqueName("conduit.test.usage")
        let embedder = try ServiceProcessTests.RunningService("embedder", portOffset: 80)
        defer { embedder.process.signal(SIGKILL) }
        // The threshold is lowered for this test so that the negated question's similarity
        // clears it: only the guard then stands between it and the cached answer.
        let orchestrator = try ServiceProcessTests.RunningService("orchestrator", portOffset: 80, extraEnvironment: [
            "CONDUIT_MODEL_CATALOG": try Self.catalog(model), "CONDUIT_EMBEDDER_URL": embedder.base, "CONDUIT_CACHE_THRESHOLD": "0.85",
            "CONDUIT_ORCHESTRATOR_USAGE_TOPIC": usageTopic,
        ])
        defer { orchestrator.process.signal(SIGKILL) }
        let gatewayService = try ServiceProcessTests.RunningService("gateway", portOffset: 80, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": key, "CONDUIT_ADMIN_TENANT": tenant, "CONDUIT_ORCHESTRATOR_URL": orchestrator.base,
        ])
        defer { gatewayService.process.signal(SIGKILL) }
        // A second gateway only installs the other tenant's key in the shared database.
        let otherGateway = try ServiceProcessTests.RunningService("gateway", portOffset: 90, extraEnvironment: [
            "CONDUIT_ADMIN_KEY": otherKey, "CONDUIT_ADMIN_TENANT": other, "CONDUIT_ORCHESTRATOR_URL": orchestrator.base,
        ])
        defer { otherGateway.process.signal(SIGKILL) }
        for service in [embedder, orchestrator, gatewayService, otherGateway] { try await service.waitUntilReady() }
        let gateway = gatewayService.base

        let question = "How do I enable two-factor authentication for my account?"
        let first = try await Self.chat(gateway, key: key, [("user", question)])
        #expect(first.status == 200)
        #expect(first.header("X-Conduit-Cache") == "miss")
        let calls = model.requests.count

        // A paraphrase is answered from the cache: same text, no model call, similarity reported.
        let paraphrase = try await Self.chat(gateway, key: key, [("user", "How can I enable two-factor authentication for my account?")])
        #expect(paraphrase.header("X-Conduit-Cache") == "hit")
        let similarity = try #require(paraphrase.header("X-Conduit-Cache-Similarity").flatMap(Double.init))
        #expect(similarity >= 0.85 && similarity < 1)
        #expect(paraphrase.json?["choices"]?[0]?["message"]?["content"] == first.json?["choices"]?[0]?["message"]?["content"])
        #expect(paraphrase.json?["conduit"]?["cache"]?["hit"] == true)
        #expect(model.requests.count == calls)

        // The hit costs nothing: its usage event says cache_hit with no cost; the miss's has the model's tokens.
        let usage = try await TestEnvironment.readMessages(usageTopic, count: 2).compactMap { JSONValue.parse($0.value) }
        let hitEvent = usage.first { $0["cache_hit"] == true }
        #expect(hitEvent?["cost_usd"]?.doubleValue == 0)
        #expect(hitEvent?["served_model"]?.stringValue == "scripted" && hitEvent?["status"]?.stringValue == "ok")
        #expect(usage.first { $0["cache_hit"] == false }?["prompt_tokens"]?.intValue == 20)

        // The negated question is close enough by embedding, but the guard refuses the hit.
        let negated = try await Self.chat(gateway, key: key, [("user", "How do I disable two-factor authentication for my account?")])
        #expect(negated.header("X-Conduit-Cache") == "miss")
        #expect((negated.header("X-Conduit-Cache-Similarity").flatMap(Double.init) ?? 0) >= 0.85)
        #expect(negated.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: How do I disable two-factor authentication for my account?")

        // Another tenant asking the very same question is not served this tenant's answer.
        let stranger = try await Self.chat(gateway, key: otherKey, [("user", question)])
        #expect(stranger.header("X-Conduit-Cache") == "miss")

        // A different system prompt is a different context.
        let otherContext = try await Self.chat(gateway, key: key, [("system", "Answer in French."), ("user", question)])
        #expect(otherContext.header("X-Conduit-Cache") == "miss")

        // A hit replayed as a stream: role, the same text in pieces, finish, usage, [DONE].
        let replayed = try await Self.chat(gateway, key: key, [("user", "How can I enable two-factor authentication for my account?")], stream: true)
        #expect(replayed.header("X-Conduit-Cache") == "hit")
        let events = Self.events(replayed.body).dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
        #expect(Self.events(replayed.body).last == "[DONE]")
        #expect(events.first?["choices"]?[0]?["delta"]?["role"]?.stringValue == "assistant")
        let text = events.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == first.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
        #expect(events.contains { $0["choices"]?[0]?["finish_reason"]?.stringValue == "stop" })
        #expect(events.last?["usage"]?["completion_tokens"] != nil)

        // Hot sampling is not cached; the counters are on /metrics.
        let hot = try await Self.call(gateway, "POST", "/v1/chat/completions", key: key, json: #"{"model":"scripted","temperature":1.5,"messages":[{"role":"user","content":"\#(question)"}]}"#)
        #expect(hot.status == 200 && hot.header("X-Conduit-Cache") == nil)
        let metrics = try await orchestrator.get("/metrics").body
        #expect(metrics.contains(#"semantic_cache_hits_total{similarity_range=""#))
        #expect(metrics.contains("semantic_cache_misses_total"))

        // A purge empties the tenant's cache.
        let purged = try await Self.call(gateway, "DELETE", "/v1/cache", key: key)
        #expect(purged.json?["deleted"]?.intValue ?? 0 >= 1)
        let afterPurge = try await Self.chat(gateway, key: key, [("user", question)])
        #expect(afterPurge.header("X-Conduit-Cache") == "miss")
    }
}
