import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import Logging
import NIOCore
import Testing
import TestSupport

/// `/v1/documents` through the gateway's router: indexing requests on the test stack's Kafka,
/// scoped to the key's tenant, acknowledged by the broker before the 202.
@Suite(.timeLimit(.minutes(2)))
struct KafkaIndexingQueueTests {
    static func app(key: String, tenant: String, topic: String, extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        var values = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        values["CONDUIT_ADMIN_KEY"] = key
        values["CONDUIT_ADMIN_TENANT"] = tenant
        values["CONDUIT_GATEWAY_INDEXING_TOPIC"] = topic
        values["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("gateway-audit")
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(values))
        return try await buildApplication(configuration: configuration, logger: Logger(label: "gateway-test"))
    }

    static func send(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String, body: String? = nil) async throws -> (HTTPResponse.Status, JSONValue?) {
        let response = try await client.execute(uri: uri, method: method, headers: [.contentType: "application/json", .authorization: "Bearer \(key)"],
                                                body: body.map { ByteBuffer(string: $0) })
        return (response.status, JSONValue.parse(Array(response.body.readableBytesView)))
    }

    @Test func documentsArePublishedForTheKeysTenantAndAcknowledged() async throws {
        let key = APIKeyAuthenticator.generateKey()
        let tenant = TestEnvironment.uniqueName("tenant")
        let topic = TestEnvironment.uniqueName("conduit.test.requests")
        try await Self.app(key: key, tenant: tenant, topic: topic).test(.router) { client in
            // The tenant is the key's, whatever the body or headers claim.
            let one = try await Self.send(client, .post, "/v1/documents", key: key,
                                          body: #"{"collection":"kb","doc_id":"guide","text":"How to bake bread.","metadata":{"year":2024},"tenant":"someone-else"}"#)
            #expect(one.0 == .accepted)
            #expect(one.1?["key"]?.stringValue == "\(tenant)/kb/guide")
            let batch = try await Self.send(client, .post, "/v1/documents", key: key,
                                            body: #"{"documents":[{"collection":"kb","doc_id":"a","text":"first"},{"collection":"kb","doc_id":"b","text":"second"}]}"#)
            #expect(batch.0 == .accepted)
            #expect(batch.1?["data"]?.arrayValue?.compactMap { $0["doc_id"]?.stringValue } == ["a", "b"])
            let deleted = try await Self.send(client, .delete, "/v1/documents/kb/guide", key: key)
            #expect(deleted.0 == .accepted)
            #expect(deleted.1?["op"] == "delete")
        }
        let events = try await TestEnvironment.readMessages(topic, count: 4).map { try EventCoding.decoder().decode(IndexingRequest.self, from: Data($0.value)) }
        #expect(events.allSatisfy { $0.tenant == tenant && $0.collection == "kb" })
        #expect(Set(events.map { "\($0.op.rawValue):\($0.docID)" }) == ["upsert:guide", "upsert:a", "upsert:b", "delete:guide"])
        #expect(events.first { $0.docID == "guide" && $0.op == .upsert }?.metadata?["year"] == 2024)
        #expect(events.first { $0.docID == "a" }?.text == "first")
    }

}

extension KafkaIndexingQueueTests {
    /// A document longer than the embedder indexes is refused where it enters (it used to be
    /// accepted and then dead-lettered), and so is one the broker cannot take: 413, nothing queued.
    @Test func documentsTooLargeToIndexAreRefusedWith413AndNothingPublished() async throws {
        let key = APIKeyAuthenticator.generateKey()
        let topic = TestEnvironment.uniqueName("conduit.test.requests")
        let extra = ["CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS": "100", "CONDUIT_KAFKA_MAX_MESSAGE_BYTES": "2000"]
        try await Self.app(key: key, tenant: TestEnvironment.uniqueName("tenant"), topic: topic, extra: extra).test(.router) { client in
            let long = String(repeating: "é", count: 101)
            for (body, param) in [
                (#"{"collection":"kb","doc_id":"x","text":"\#(long)"}"#, "text"),
                (#"{"documents":[{"collection":"kb","doc_id":"ok","text":"t"},{"collection":"kb","doc_id":"x","text":"\#(long)"}]}"#, "documents[1].text"),
            ] {
                let (status, answer) = try await Self.send(client, .post, "/v1/documents", key: key, body: body)
                #expect(status == .contentTooLarge)
                #expect(answer?["error"]?["code"]?.stringValue == "document_too_large")
                #expect(answer?["error"]?["param"]?.stringValue == param)
                #expect(answer?["error"]?["message"]?.stringValue?.contains("101 characters") == true)
            }
            // Within the characters, but metadata makes the event larger than a message may be.
            let heavy = #"{"collection":"kb","doc_id":"heavy","text":"short","metadata":{"notes":"\#(String(repeating: "n", count: 3000))"}}"#
            let (status, answer) = try await Self.send(client, .post, "/v1/documents", key: key, body: heavy)
            #expect(status == .contentTooLarge)
            #expect(answer?["error"]?["code"]?.stringValue == "document_too_large")
            #expect(try await Self.send(client, .post, "/v1/documents", key: key, body: #"{"collection":"kb","doc_id":"good","text":"fine"}"#).0 == .accepted)
        }
        let events = try await TestEnvironment.readMessages(topic, count: 1)
        #expect(try EventCoding.decoder().decode(IndexingRequest.self, from: Data(events[0].value)).docID == "good")
    }

}
