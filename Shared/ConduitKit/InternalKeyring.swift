import ConduitProtocol
import Crypto
import Foundation

/// The key the services share to sign and verify the caller's identity on internal hops
/// (DESIGN.md: only the gateway authenticates callers; everyone behind it believes only what it
/// signed). The gateway signs; every internal service verifies with the current key and, during
/// a rotation, the previous one.
///
/// A token is `base64url(canonical form) "." base64url(HMAC-SHA256(key, canonical form))`, sent
/// in `X-Conduit-Identity`. The canonical form is eleven lines joined by `\n`:
/// `conduit-identity-v3`, expiry (Unix seconds), request id, tenant, key id, roles (comma
/// separated), team, user, the key's chat defaults as base64, the key's tags (comma
/// separated), and the models the key may use (empty: every model; else `=` and the names,
/// comma separated). No field may hold a newline and no role, tag or model a comma (ids and
/// model names are validated; the defaults are base64), so the form reads back one way only.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_INTERNAL_KEY` | none: every service refuses to start without it (`make up` and `make test` generate one); at least 32 characters |
/// | `CONDUIT_INTERNAL_KEY_PREVIOUS` | none; during a rotation, the key being replaced, still accepted |
/// | `CONDUIT_INTERNAL_IDENTITY_TTL_S` | 300 (how long a signed identity is honoured) |
public struct InternalKeyring: Sendable {
    // Bytes rather than `SymmetricKey`, which is not `Sendable`; a key is made per use (cheap).
    private let current: [UInt8]
    private let previous: [UInt8]?
    public var lifetime: Duration

    public static let minimumKeyLength = 32
    static let version = "conduit-identity-v3"

    public init(current: String, previous: String? = nil, lifetime: Duration = .seconds(300)) throws {
        guard current.utf8.count >= Self.minimumKeyLength else {
            throw ConfigurationError(key: "CONDUIT_INTERNAL_KEY", expected: "at least \(Self.minimumKeyLength) characters")
        }
        if let previous, previous.utf8.count < Self.minimumKeyLength {
            throw ConfigurationError(key: "CONDUIT_INTERNAL_KEY_PREVIOUS", expected: "at least \(Self.minimumKeyLength) characters")
        }
        self.current = Array(current.utf8)
        self.previous = previous.map { Array($0.utf8) }
        self.lifetime = lifetime
    }

    /// The keyring of the environment, or nil when `CONDUIT_INTERNAL_KEY` is not set.
    public init?(environment: ConduitEnvironment) throws {
        guard let key = environment.optionalString("CONDUIT_INTERNAL_KEY") else { return nil }
        let seconds = try environment.int("CONDUIT_INTERNAL_IDENTITY_TTL_S", default: 300)
        guard seconds > 0 else { throw ConfigurationError(key: "CONDUIT_INTERNAL_IDENTITY_TTL_S", expected: "a positive number of seconds") }
        try self.init(current: key, previous: environment.optionalString("CONDUIT_INTERNAL_KEY_PREVIOUS"), lifetime: .seconds(seconds))
    }

    /// A token for `identity` on the hops of request `requestID`, valid for `lifetime`.
    public func sign(_ identity: CallerIdentity, requestID: String, now: Date = Date()) throws(IdentityError) -> String {
        let expires = Int(now.timeIntervalSince1970) + Int(lifetime.components.seconds)
        let fields = [
            Self.version, String(expires), requestID, identity.tenant, identity.keyID, identity.roles.joined(separator: ","),
            identity.team ?? "", identity.user ?? "", Data((identity.chatDefaults ?? "").utf8).base64EncodedString(),
            identity.tags.joined(separator: ","), identity.models.map { "=" + $0.joined(separator: ",") } ?? "",
        ]
        guard !fields.contains(where: { $0.contains("\n") || $0.contains("\r") }),
              !(identity.roles + identity.tags + (identity.models ?? [])).contains(where: { $0.contains(",") || $0.isEmpty }) else { throw IdentityError(.malformed) }
        let canonical = Data(fields.joined(separator: "\n").utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: canonical, using: SymmetricKey(data: current))
        return Base64URL.encode(canonical) + "." + Base64URL.encode(Data(mac))
    }

    /// The identity a token carries, if one of the keys signed it, it has not expired and it
    /// was made for `requestID`.
    public func verify(_ token: String, requestID: String, now: Date = Date()) throws(IdentityError) -> CallerIdentity {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let canonical = Base64URL.decode(parts[0]), let mac = Base64URL.decode(parts[1]) else {
            throw IdentityError(.malformed)
        }
        let signed = [current, previous].compactMap { $0 }.contains { key in
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: canonical, using: SymmetricKey(data: key))
        }
        guard signed else { throw IdentityError(.badSignature) }
        let fields = String(decoding: canonical, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 11, fields[0] == Self.version, let expires = Int(fields[1]),
              let defaults = Data(base64Encoded: fields[8]) else { throw IdentityError(.malformed) }
        guard Double(expires) >= now.timeIntervalSince1970 else { throw IdentityError(.expired) }
        guard fields[2] == requestID else { throw IdentityError(.otherRequest) }
        guard Identifier.tenant.isValid(fields[3]) else { throw IdentityError(.malformed) }
        var identity = CallerIdentity(
            tenant: fields[3], keyID: fields[4], roles: fields[5].split(separator: ",").map(String.init),
            team: fields[6].isEmpty ? nil : fields[6], user: fields[7].isEmpty ? nil : fields[7],
            chatDefaults: defaults.isEmpty ? nil : String(decoding: defaults, as: UTF8.self),
            tags: fields[9].split(separator: ",").map(String.init))
        if fields[10].hasPrefix("=") { identity.models = fields[10].dropFirst().split(separator: ",").map(String.init) }
        return identity
    }
}

/// Why a signed identity was refused. The description is safe to show a caller: it never
/// carries the token or the key.
public struct IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Reason: Sendable, Equatable {
        fileprivate enum Value { case missing, malformed, badSignature, expired, otherRequest }
        fileprivate let value: Value
        public static let missing = Reason(value: .missing)
        public static let malformed = Reason(value: .malformed)
        public static let badSignature = Reason(value: .badSignature)
        public static let expired = Reason(value: .expired)
        public static let otherRequest = Reason(value: .otherRequest)
    }

    public var reason: Reason

    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason.value {
        case .missing: "no signed identity (\(ConduitHeader.identity)); internal services answer only requests the gateway signed"
        case .malformed: "the signed identity (\(ConduitHeader.identity)) is malformed"
        case .badSignature: "the signed identity (\(ConduitHeader.identity)) has no valid signature"
        case .expired: "the signed identity (\(ConduitHeader.identity)) has expired"
        case .otherRequest: "the signed identity (\(ConduitHeader.identity)) was issued for another request id"
        }
    }
}

/// RFC 4648 §5 base64 without padding, as JWTs use it.
enum Base64URL {
    static func encode(_ data: Data) -> String {
        var text = data.base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    static func decode(_ text: Substring) -> Data? {
        guard !text.isEmpty else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
