import ConduitKit
import ConduitProtocol
import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
@testable import Retriever
import SearchEngine
import Testing
import TestSupport

/// The retriever's HTTP API through the application the binary runs, against the test stack's
/// Postgres. Each test works in its own tenant.
@Suite(.timeLimit(.minutes(2)))
struct RetrieverAPITests {
    static func app() async throws -> some ApplicationProtocol {
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_RETRIEVER_GROUP"] = TestEnvironment.uniqueName("retriever-api")
        values["CONDUIT_RETRIEVER_CHUNKS_TOPIC"] = TestEnvironment.uniqueName("conduit.test.chunks")
        values["CONDUIT_KAFKA_MAX_POLL_INTERVAL_MS"] = "7000"
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        let configuration = try ServiceConfiguration(service: .retriever, environment: ConduitEnvironment(values))
        return try await buildApplication(configuration: configuration, logger: Logger(label: "retriever-test"))
    }

    static func send(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, tenant: String?, _ json: String? = nil) async throws -> (status: HTTPResponse.Status, json: [String: Any]) {
        var headers: HTTPFields = tenant.map { TestIdentity.fields(tenant: $0) } ?? [:]
        headers[.contentType] = "application/json"
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        return (response.status, object)
    }

    static func results(_ json: [String: Any]) -> [[String: Any]] { json["results"] as? [[String: Any]] ?? [] }

    static func error(_ json: [String: Any]) -> (message: String, param: String?) {
        let error = json["error"] as? [String: Any] ?? [:]
        return (error["message"] as? String ?? "", error["param"] as? String)
    }

    @Test func createSearchDeleteThroughTheAPI() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        try await Self.app().test(.live) { client in
            let created = try await Self.send(client, .post, "/v1/collections", tenant: tenant,
                                              #"{"name":"notes","dimension":3,"m":8,"ef_search":32,"quantization":"none"}"#)
            #expect(created.status == .created)
            #expect(created.json["m"] as? Int == 8)
            #expect(created.json["ef_search"] as? Int == 32)
            let again = try await Self.send(client, .post, "/v1/collections", tenant: tenant, #"{"name":"notes","dimension":3}"#)
            #expect(again.status == .conflict)

            // Searching an empty collection answers an empty list; unknown ones 404.
            let empty = try await Self.send(client, .post, "/v1/search", tenant: tenant, #"{"collection":"notes","vector":[1,0,0],"mode":"vector"}"#)
            #expect(empty.status == .ok)
            #expect(Self.results(empty.json).isEmpty)
            let unknown = try await Self.send(client, .post, "/v1/search", tenant: tenant, #"{"collection":"nope","vector":[1,0,0]}"#)
            #expect(unknown.status == .notFound)
            #expect(Self.error(unknown.json).param == "collection")

            let stats = try await Self.send(client, .get, "/v1/collections/notes", tenant: tenant)
            #expect(stats.status == .ok)
            #expect(stats.json["chunks"] as? Int == 0)
            let list = try await Self.send(client, .get, "/v1/collections", tenant: tenant)
            #expect((list.json["data"] as? [[String: Any]])?.map { $0["name"] as? String } == ["notes"])
            // Another tenant sees none of it.
            let other = try await Self.send(client, .get, "/v1/collections/notes", tenant: tenant + "-other")
            #expect(other.status == .notFound)

            #expect(try await Self.send(client, .delete, "/v1/collections/notes", tenant: tenant).status == .ok)
            #expect(try await Self.send(client, .get, "/v1/collections/notes", tenant: tenant).status == .notFound)
            #expect(try await Self.send(client, .delete, "/v1/collections/notes", tenant: tenant).status == .notFound)
        }
    }

    @Test func badRequestsGetClearErrors() async throws {
        let tenant = TestEnvironment.uniqueName("tenant")
        try await Self.app().test(.live) { client in
            #expect(try await Self.send(client, .post, "/v1/collections", tenant: tenant, #"{"name":"c","dimension":3}"#).status == .created)
            let cases: [(String, String?, String)] = [
                (#"{"collection":"c","vector":[1,0]}"#, "vector", "2 dimensions"),
                (#"{"collection":"c","vector":[1,0,0],"filter":{"field":"x","like":1}}"#, "filter", "unknown filter operator 'like'"),
                (#"{"collection":"c","vector":[1,0,0],"top_k":0}"#, "top_k", "top_k"),
                (#"{"collection":"c","vector":[1,0,0],"mode":"fuzzy"}"#, "mode", "mode"),
                (#"{"collection":"c","query":"x","mode":"keyword","weights":{"bm25":2}}"#, "weights", "'bm25'"),
                (#"{"collection":"c","mode":"keyword"}"#, "query", "needs query text"),
                (#"{"collection":"c","vector":"no"}"#, "vector", "'vector'"),
                (#"{"vector":[1,0,0]}"#, "collection", "'collection'"),
                (#"{"collection":"c","vector":[1,0,0],"ef":0}"#, "ef", "'ef'"),
                (#"{"collection":"c","vector":[1,0,0],"ef":100000}"#, "ef", "4096"),
                (#"{"collection":"c","vector":[1,0,0],"top_k":1000000}"#, "top_k", "1000"),
                (#"{"collection":"c","vector":[1,0,0],"filter":{"field":"x","in":["# + (0..<1500).map { "\($0)" }.joined(separator: ",") + #"]}}"#, "filter", "at most 1024"),
            ]
            for (body, param, fragment) in cases {
                let response = try await Self.send(client, .post, "/v1/search", tenant: tenant, body)
                #expect(response.status == .badRequest, "\(body)")
                let error = Self.error(response.json)
                #expect(error.param?.hasPrefix(param ?? "") == true, "\(body): param \(error.param ?? "nil")")
                #expect(error.message.contains(fragment), "\(body): \(error.message)")
            }
            let noTenant = try await Self.send(client, .post, "/v1/search", tenant: nil, #"{"collection":"c","vector":[1,0,0]}"#)
            #expect(noTenant.status == .unauthorized)
            #expect(Self.error(noTenant.json).message.contains("X-Conduit-Identity"))
            let badName = try await Self.send(client, .post, "/v1/collections", tenant: tenant, #"{"name":"a/b","dimension":3}"#)
            #expect(badName.status == .badRequest)
            #expect(Self.error(badName.json).param == "name")
            let notJSON = try await Self.send(client, .post, "/v1/search", tenant: tenant, "{nope")
            #expect(notJSON.status == .badRequest)
        }
    }
}
