import Foundation

/// A W3C trace context (`traceparent: 00-<trace-id>-<parent-id>-<flags>`).
public struct TraceContext: Sendable, Hashable {
    /// 32 lower-case hex digits.
    public var traceID: String
    /// 16 lower-case hex digits: the span of this hop.
    public var spanID: String
    public var sampled: Bool

    /// Parses a `traceparent` header; nil when it is malformed or uses the all-zero ids the spec forbids.
    public init?(traceparent: String) {
        let parts = traceparent.trimmingCharacters(in: [" ", "\t"]).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4,
              parts[0].count == 2, parts[0] != "ff", Self.isHex(parts[0]),
              parts[1].count == 32, Self.isHex(parts[1]), parts[1] != String(repeating: "0", count: 32),
              parts[2].count == 16, Self.isHex(parts[2]), parts[2] != String(repeating: "0", count: 16),
              parts[3].count == 2, Self.isHex(parts[3]), let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        // Version 00 has exactly four fields; later versions may append more.
        if parts[0] == "00", parts.count != 4 { return nil }
        traceID = parts[1].lowercased()
        spanID = parts[2].lowercased()
        sampled = flags & 1 == 1
    }

    public init(traceID: String, spanID: String, sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// A new trace rooted here.
    public static func random() -> TraceContext {
        TraceContext(traceID: randomHex(bytes: 16), spanID: randomHex(bytes: 8), sampled: true)
    }

    /// The context for the next hop: same trace, new span.
    public func child() -> TraceContext {
        TraceContext(traceID: traceID, spanID: Self.randomHex(bytes: 8), sampled: sampled)
    }

    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    /// Lower-case hex of random bytes, never all zeros (the spec forbids all-zero ids). One
    /// 64-bit draw per eight bytes: this runs on every request, so no per-byte strings.
    static func randomHex(bytes: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var generator = SystemRandomNumberGenerator()
        while true {
            var text = [UInt8]()
            text.reserveCapacity(bytes * 2)
            var nonZero = false
            while text.count < bytes * 2 {
                var word = generator.next()
                for _ in 0..<min(8, bytes - text.count / 2) {
                    let byte = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    nonZero = nonZero || byte != 0
                    text.append(digits[Int(byte >> 4)])
                    text.append(digits[Int(byte & 0xF)])
                }
            }
            if nonZero { return String(decoding: text, as: UTF8.self) }
        }
    }

    private static func isHex(_ text: Substring) -> Bool {
        text.allSatisfy { $0.isHexDigit && ($0.isNumber || $0.isLowercase) }
    }
}
