/// The ids callers choose that end up inside Redis keys, Kafka keys, URL paths and Postgres
/// rows: each kind has one documented charset and length, checked where the id enters. None
/// allows `*`, `?`, `[`, `]` or `\` (Redis glob characters); tenants and collections allow no
/// `:` either, so `sess:{tenant}:{session}` and `cache:{tenant}:…` split one way only.
public enum Identifier: Sendable {
    case tenant
    case collection
    case session
    case prompt

    /// Longest accepted id, in bytes (every accepted character is one byte).
    public var maxLength: Int {
        switch self {
        case .tenant: 64
        case .collection, .session: 128
        case .prompt: 200
        }
    }

    /// The rule, as a sentence for error messages and the README.
    public var rule: String {
        switch self {
        case .tenant: "1 to 64 letters, digits, '_', '-' or '.'"
        case .collection: "1 to 128 letters, digits, '_', '-' or '.'"
        case .session: "1 to 128 letters, digits, '.', '_', '-' or ':'"
        case .prompt: "1 to 200 letters, digits, '_', '-', '.' or '/' (folders), with no empty folder"
        }
    }

    public func isValid(_ id: String) -> Bool {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= maxLength else { return false }
        guard bytes.allSatisfy(allows) else { return false }
        if self == .prompt {
            return bytes.first != Self.slash && bytes.last != Self.slash && !id.contains("//")
        }
        return true
    }

    private static let slash = UInt8(ascii: "/")

    private func allows(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        case UInt8(ascii: ":"): self == .session
        case Self.slash: self == .prompt
        default: false
        }
    }
}
