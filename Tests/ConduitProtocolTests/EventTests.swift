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

    /// Schema 2 carries vectors as base64 float32 (exact, and less than half the size of JSON
    /// numbers) and a part number; schema 1's JSON numbers are still read, as one part.
    @Test func chunkEventsCarryVectorsAsBase64AndStillReadSchemaOne() throws {
        let vector: [Float] = [0.1, -2.5, .leastNonzeroMagnitude, 3.4e38, 0, -0.0]
        var event = IndexedDocumentEvent(op: .upsert, tenant: "t", collection: "c", docID: "d", version: "v", part: 1, parts: 3)
        event.chunks = [.init(id: "d#0", index: 0, text: "hi", start: 0, end: 2, heading: nil, contentHash: "h", embedding: vector)]
        let data = try EventCoding.encoder().encode(event)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["schema_version"] as? Int == 2)
        #expect(json["part"] as? Int == 1 && json["parts"] as? Int == 3)
        let chunk = try #require((json["chunks"] as? [[String: Any]])?.first)
        #expect(chunk["embedding"] == nil)
        #expect(chunk["vector"] as? String == Data([0.1, -2.5, .leastNonzeroMagnitude, 3.4e38, 0, -0.0].flatMap { (value: Float) in
            withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
        }).base64EncodedString())
        let back = try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: data)
        #expect(back == event)
        #expect(back.chunks[0].embedding.map(\.bitPattern) == vector.map(\.bitPattern))

        let realistic = (0..<384).map { Float(sin(Double($0))) * 0.08 }
        event.chunks[0].embedding = realistic
        let compact = try EventCoding.encoder().encode(event).count
        let numbers = try JSONEncoder().encode(realistic).count
        #expect(compact < numbers / 2)

        let old = #"{"schema_version":1,"op":"upsert","tenant":"t","collection":"c","doc_id":"d","version":"v","chunks":[{"id":"d#0","index":0,"text":"hi","start":0,"end":2,"content_hash":"h","embedding":[0.5,1]}]}"#
        let read = try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data(old.utf8))
        #expect(read.schemaVersion == 1 && read.part == 0 && read.parts == 1)
        #expect(read.chunks[0].embedding == [0.5, 1])
        let broken = old.replacingOccurrences(of: #""embedding":[0.5,1]"#, with: #""vector":"AAAA!""#)
        #expect(throws: DecodingError.self) { try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data(broken.utf8)) }
        let ragged = old.replacingOccurrences(of: #""embedding":[0.5,1]"#, with: #""vector":"AAAAAAA=""#)
        #expect(throws: DecodingError.self) { try EventCoding.decoder().decode(IndexedDocumentEvent.self, from: Data(ragged.utf8)) }
    }

    @Test func topicNamesFollowTheDesign() {
        #expect(KafkaTopic.indexingRequests == "conduit.indexing.requests")
        #expect(KafkaTopic.indexingDLQ == "conduit.indexing.dlq")
        #expect(KafkaTopic.alerts == "conduit.alerts")
    }
}
