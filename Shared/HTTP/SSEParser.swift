/// One server-sent event.
public struct SSEEvent: Sendable, Hashable {
    /// The `event:` field; nil means the default type `message`.
    public var event: String?
    /// The `data:` lines joined with newlines.
    public var data: String
    public var id: String?
    /// Reconnection time in milliseconds, when sent.
    public var retry: Int?

    public init(event: String? = nil, data: String, id: String? = nil, retry: Int? = nil) {
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry
    }
}

/// The `text/event-stream` grammar of the WHATWG HTML standard, fed in arbitrary byte chunks:
/// lines end in CRLF, LF or CR; `:` starts a comment; a blank line dispatches the event.
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var data: [String] = []
    private var hasData = false
    private var event: String?
    private var id: String?
    private var retry: Int?
    private var lastWasCR = false
    private var sawFirstLine = false

    public init() {}

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if lastWasCR {
                lastWasCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\n"):
                if let event = endLine() { events.append(event) }
            case UInt8(ascii: "\r"):
                lastWasCR = true
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
            }
        }
        return events
    }

    /// At end of stream an incomplete event is discarded, as the standard says.
    public mutating func finish() -> [SSEEvent] {
        line = []
        reset()
        return []
    }

    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if !sawFirstLine {
            sawFirstLine = true
            // A leading byte-order mark is ignored.
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }
        let field: String
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = String(decoding: line[..<colon], as: UTF8.self)
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = String(decoding: line, as: UTF8.self)
            value = []
        }
        let text = String(decoding: value, as: UTF8.self)
        switch field {
        case "event": event = text
        case "data": data.append(text); hasData = true
        case "id": if !text.contains("\0") { id = text }
        case "retry": if let milliseconds = Int(text), text.allSatisfy(\.isASCII) { retry = milliseconds }
        default: break
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer { reset() }
        guard hasData else { return nil }
        return SSEEvent(event: event, data: data.joined(separator: "\n"), id: id, retry: retry)
    }

    private mutating func reset() {
        data = []
        hasData = false
        event = nil
        retry = nil
    }
}
