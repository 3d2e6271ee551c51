import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TestSupport

/// `/v1/documents` through the gateway's router, over an in-process indexing queue: what is
/// accepted, for which tenant, and what is refused with nothing queued.
@Suite(.timeLimit(.minutes(1)))
struct DocumentsTests {
    static func send(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String, body: String? = nil) async throws -> (HTTPResponse.Status, JSONValue?) {
        let response = try await client.execute(uri: uri, method: method, headers: [.contentType: "application/json", .authorization: "Bearer \(key)"],
                                                body: body.map { ByteBuffer(string: $0) })
        return (response.status, JSONValue.parse(Array(response.body.readableBytesView)))
    }

    @Test func documentsAreQueuedForTheKeysTenant() async throws {
        let harness = GatewayHarness()
        try await harness.app().test(.router) { client in
            let one = try await Self.send(client, .post, "/v1/documents", key: harness.key,
                                          body: #"{"collection":"kb","doc_id":"guide","text":"How to bake bread.","metadata":{"year":2024},"tenant":"someone-else"}"#)
            #expect(one.0 == .accepted)
            #expect(one.1?["key"] == "acme/kb/guide")
            let batch = try await Self.send(client, .post, "/v1/documents", key: harness.key,
                                            body: #"{"documents":[{"collection":"kb","doc_id":"a","text":"first"},{"collection":"kb","doc_id":"b","text":"second"}]}"#)
            #expect(batch.1?["data"]?.arrayValue?.compactMap { $0["doc_id"]?.stringValue } == ["a", "b"])
        }
        let requests = harness.indexing.requests
        #expect(requests.map(\.docID) == ["guide", "a", "b"])
        #expect(requests.allSatisfy { $0.tenant == "acme" && $0.op == .upsert })
        #expect(requests[0].metadata?["year"] == 2024)
    }

    @Test func badDocumentsAreRefusedWithTheFieldNamedAndNothingQueued() async throws {
        let harness = GatewayHarness(environment: ["CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS": "100"])
        let long = String(repeating: "é", count: 101)
        try await harness.app().test(.router) { client in
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"collection":"kb","doc_id":"x"}"#, .badRequest, "text"),
                (#"{"collection":"kb","doc_id":"x","text":"   "}"#, .badRequest, "text"),
                (#"{"collection":"a/b","doc_id":"x","text":"t"}"#, .badRequest, "collection"),
                (#"{"collection":"kb","doc_id":"","text":"t"}"#, .badRequest, "doc_id"),
                (#"{"documents":[]}"#, .badRequest, "documents"),
                (#"{"documents":[{"collection":"kb","doc_id":"ok","text":"t"},{"collection":"kb","doc_id":"x","text":""}]}"#, .badRequest, "documents[1].text"),
                (#"{"collection":"kb","doc_id":"x","text":42}"#, .badRequest, "text"),
                (#"{"collection":"kb","doc_id":"x","text":"\#(long)"}"#, .contentTooLarge, "text"),
                (#"{"documents":[{"collection":"kb","doc_id":"ok","text":"t"},{"collection":"kb","doc_id":"x","text":"\#(long)"}]}"#, .contentTooLarge, "documents[1].text"),
            ]
            for (body, status, param) in cases {
                let (answered, answer) = try await Self.send(client, .post, "/v1/documents", key: harness.key, body: body)
                #expect(answered == status, "\(body)")
                #expect(answer?["error"]?["param"]?.stringValue == param, "\(body): \(String(describing: answer))")
            }
            let (status, _) = try await Self.send(client, .post, "/v1/documents", key: "cdt-wrong", body: #"{"collection":"kb","doc_id":"x","text":"t"}"#)
            #expect(status == .unauthorized)
            #expect(try await Self.send(client, .post, "/v1/documents", key: harness.key, body: #"{"collection":"kb","doc_id":"good","text":"fine"}"#).0 == .accepted)
        }
        #expect(harness.indexing.requests.map(\.docID) == ["good"])
    }

    @Test func aQueueThatRefusesIsA413ForSizeAndA503Otherwise() async throws {
        for (failure, status, code) in [(IndexingQueueError.tooLarge, HTTPResponse.Status.contentTooLarge, "document_too_large"), (.unavailable, .serviceUnavailable, nil)] {
            let harness = GatewayHarness(indexing: RecordingIndexingQueue(failure: failure))
            try await harness.app().test(.router) { client in
                let (answered, answer) = try await Self.send(client, .post, "/v1/documents", key: harness.key, body: #"{"collection":"kb","doc_id":"x","text":"t"}"#)
                #expect(answered == status)
                #expect(answer?["error"]?["message"]?.stringValue?.contains("nothing was accepted") == true)
                if let code { #expect(answer?["error"]?["code"]?.stringValue == code) }
            }
        }
    }

    /// Ids that need escaping in a path delete exactly the id they name.
    @Test func deletedIdsRoundTripWhateverCharactersTheyHold() async throws {
        let harness = GatewayHarness()
        let ids = ["my doc", "café", "a/b", "100%", "q?x=1#frag"]
        try await harness.app().test(.router) { client in
            for id in ids {
                let escaped = id.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let (status, answer) = try await Self.send(client, .delete, "/v1/documents/kb/\(escaped)", key: harness.key)
                #expect(status == .accepted, "\(id)")
                #expect(answer?["doc_id"]?.stringValue == id)
                #expect(answer?["op"] == "delete")
            }
            let (status, answer) = try await Self.send(client, .delete, "/v1/documents/kb/bad%FF", key: harness.key)
            #expect(status == .badRequest)
            #expect(answer?["error"]?["param"]?.stringValue == "doc_id")
        }
        #expect(harness.indexing.requests.map(\.docID) == ids)
        #expect(harness.indexing.requests.allSatisfy { $0.op == .delete && $0.tenant == "acme" })
    }
}
