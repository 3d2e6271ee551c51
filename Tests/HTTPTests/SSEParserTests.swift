import HTTP
import Testing

/// The event-stream grammar, fed in awkward pieces.
struct SSEParserTests {
    func parse(_ pieces: [String]) -> [SSEEvent] {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for piece in pieces { events += parser.feed(Array(piece.utf8)) }
        return events + parser.finish()
    }

    @Test func joinsMultiLineDataAndStripsOneLeadingSpace() {
        #expect(parse(["data: one\ndata:two\ndata:  three\n\n"]) == [SSEEvent(data: "one\ntwo\n three")])
    }

    @Test func acceptsLFCRLFAndCRLineEndings() {
        #expect(parse(["data: a\r\n\r\ndata: b\r\rdata: c\n\n"]).map(\.data) == ["a", "b", "c"])
    }

    @Test func handlesACRLFSplitAcrossChunks() {
        #expect(parse(["data: a\r", "\n\r", "\n"]).map(\.data) == ["a"])
    }

    @Test func handlesBytesSplitAnywhere() {
        let text = "event: x\ndata: héllo\n\n"
        let bytes = Array(text.utf8)
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in bytes { events += parser.feed([byte]) }
        #expect(events == [SSEEvent(event: "x", data: "héllo")])
    }

    @Test func ignoresCommentsAndUnknownFieldsAndEventsWithoutData() {
        #expect(parse([": ping\n\nfoo: bar\n\nevent: empty\n\ndata: real\n\n"]) == [SSEEvent(data: "real")])
    }

    @Test func keepsTheLastIDAndReadsRetry() {
        let events = parse(["id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nretry: soon\ndata: c\n\n"])
        #expect(events.map(\.id) == ["7", "7", "7"])
        #expect(events.map(\.retry) == [1500, nil, nil])
    }

    @Test func dropsAnUnterminatedEventAtTheEnd() {
        #expect(parse(["data: complete\n\ndata: cut off"]).map(\.data) == ["complete"])
    }

    @Test func fieldWithoutColonHasEmptyValue() {
        #expect(parse(["data\n\n"]) == [SSEEvent(data: "")])
    }
}
