import ConduitProtocol
import Foundation
import Testing

/// Kafka event schemas (DESIGN.md).
struct EventTests {
    @Test func indexingRequestMatchesTheDesignedShape() throws {
        let text = #"{"schema_version":1,"op":"upsert","tenant":"t","collection":"c","doc_id":"d","text":"hi","metadata":{"lang":"en","n":2},"source":"s3://x"}"#
        let request = try JSONDecoder().decode(IndexingRequest.self, from: Data(text.utf8))
        #expect(request.key == "t/c/d")
        #expect(request.metadata?["n"] == .number(2))
        let again = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(request)) as! NSDictionary
        #expect(again == (try JSONSerialization.jsonObject(with: Data(text.utf8)) as! NSDictionary))
    }

    @Test func unknownOperationIsRejected() {
        let text = #"{"schema_version":1,"op":"explode","tenant":"t","collection":"c","doc_id":"d"}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(IndexingRequest.self, from: Data(text.utf8)) }
    }

    @Test func deadLetterKeepsUTF8AsTextAndOtherBytesAsBase64() throws {
        let text = DeadLetterEvent(reason: "r", service: "s", sourceTopic: "t", partition: 0, offset: 5, key: "k", value: Array("{bad".utf8))
        #expect(text.valueEncoding == "utf8")
        #expect(text.value == "{bad")
        let binary = DeadLetterEvent(reason: "r", service: "s", sourceTopic: "t", partition: 0, offset: 5, key: nil, value: [0xFF, 0xFE, 0x00])
        #expect(binary.valueEncoding == "base64")
        #expect(binary.originalValue == [0xFF, 0xFE, 0x00])
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(binary)) as! [String: Any]
        #expect(json["source_topic"] as? String == "t")
        #expect(json["schema_version"] as? Int == 1)
    }

    @Test func usageEventRoundTripsWithISODates() throws {
        var event = UsageEvent(requestID: "r1", tenant: "t", kind: "chat", model: "m", promptTokens: 10, completionTokens: 5, status: "ok", timestamp: Date(timeIntervalSince1970: 1_700_000_000))
        event.cachedTokens = 4
        let data = try EventCoding.encoder().encode(event)
        #expect(String(decoding: data, as: UTF8.self).contains(#""timestamp":"2023-11-14T22:13:20Z""#))
        #expect(try EventCoding.decoder().decode(UsageEvent.self, from: data) == event)
    }

    @Test func topicNamesFollowTheDesign() {
        #expect(KafkaTopic.indexingRequests == "conduit.indexing.requests")
        #expect(KafkaTopic.indexingDLQ == "conduit.indexing.dlq")
        #expect(KafkaTopic.alerts == "conduit.alerts")
    }
}
