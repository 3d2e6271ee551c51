import ConduitKit
import ConduitProtocol
import Foundation
import JWTKit

/// Bearer JWTs from the platform's identity provider, as well as API keys: RS256/384/512,
/// PS256/384/512, ES256/384/512 or EdDSA, signed by a key of the provider's JWKS (a URL,
/// fetched again when a token names a key it does not have — at most every `minRefresh` — and
/// every `refresh`; or a file). `iss`, `aud`, `exp` (required) and `nbf` are checked with
/// `leeway`; the claims configured give the tenant, roles, team and user. `alg: none`, the HMAC
/// algorithms and keys without an id are refused, so a token signed with a public key as an
/// HMAC secret is never accepted. Signatures are verified by jwt-kit.
actor JWTVerifier {
    struct Configuration: Sendable {
        var issuer: String
        var audience: String
        var leeway: TimeInterval = 60
        /// The claim naming the tenant, or `fixedTenant` for every token.
        var tenantClaim = "tenant"
        var fixedTenant: String?
        /// A list of role names, or one string of them separated by spaces.
        var rolesClaim = "roles"
        /// The role of a token whose roles claim names none Conduit knows.
        var defaultRole: Role = .viewer
        var teamClaim = "team"
        var userClaim = "sub"
        var minRefresh: Duration = .seconds(30)
        var refresh: Duration = .seconds(300)
    }

    static let algorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
    static let maxKeys = 100

    let configuration: Configuration
    /// The JWKS document, as JSON.
    private let fetchKeys: @Sendable () async throws -> [UInt8]
    private var keys = JWTKeyCollection()
    private var kids: Set<String> = []
    private var fetched: ContinuousClock.Instant?

    init(configuration: Configuration, fetchKeys: @escaping @Sendable () async throws -> [UInt8]) {
        self.configuration = configuration
        self.fetchKeys = fetchKeys
    }

    /// Whether `bearer` looks like a JWT (three base64url parts) rather than an API key.
    static func looksLikeJWT(_ bearer: String) -> Bool {
        !bearer.hasPrefix("cdt-") && bearer.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }

    /// The caller a valid token names; `APIError` 401 naming what is wrong otherwise.
    func identity(for token: String) async throws -> CallerIdentity {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Self.base64URL(parts[0]),
              case .object(let header)? = JSONValue.parse(headerBytes) else { throw Self.refusal("it is not a JWT") }
        guard let alg = header["alg"]?.stringValue, Self.algorithms.contains(alg) else {
            throw Self.refusal("its algorithm is not accepted (\(Self.algorithms.sorted().joined(separator: ", ")))")
        }
        guard let kid = header["kid"]?.stringValue, !kid.isEmpty else { throw Self.refusal("it names no key ('kid')") }
        try await ensureKey(kid)
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self)
        } catch {
            throw Self.refusal("its signature does not verify")
        }
        return try identity(from: claims.values)
    }

    private func identity(from claims: [String: JSONValue]) throws -> CallerIdentity {
        let now = Date().timeIntervalSince1970
        guard case .number(let expires)? = claims["exp"] else { throw Self.refusal("it has no expiry ('exp')") }
        guard expires + configuration.leeway > now else { throw Self.refusal("it has expired") }
        if case .number(let notBefore)? = claims["nbf"], notBefore - configuration.leeway > now { throw Self.refusal("it is not valid yet ('nbf')") }
        guard claims["iss"]?.stringValue == configuration.issuer else { throw Self.refusal("its issuer is not \(configuration.issuer)") }
        let audiences: [String] = switch claims["aud"] {
        case .string(let one)?: [one]
        case .array(let many)?: many.compactMap(\.stringValue)
        default: []
        }
        guard audiences.contains(configuration.audience) else { throw Self.refusal("its audience is not \(configuration.audience)") }
        guard let tenant = configuration.fixedTenant ?? claims[configuration.tenantClaim]?.stringValue, Identifier.tenant.isValid(tenant) else {
            throw Self.refusal("its '\(configuration.tenantClaim)' claim names no valid tenant")
        }
        let named: [String] = switch claims[configuration.rolesClaim] {
        case .string(let text)?: text.split(separator: " ").map(String.init)
        case .array(let items)?: items.compactMap(\.stringValue)
        default: []
        }
        let role = named.compactMap(Role.init(rawValue:)).first { $0 != .platformAdmin } ?? configuration.defaultRole
        func text(_ claim: String) -> String? {
            guard let value = claims[claim]?.stringValue, !value.isEmpty, value.utf8.count <= 200, !value.contains(where: { $0.isNewline || $0 == "," }) else { return nil }
            return value
        }
        let user = text(configuration.userClaim)
        return CallerIdentity(tenant: tenant, keyID: "jwt:" + (user ?? "anonymous"), roles: [role.rawValue], team: text(configuration.teamClaim), user: user)
    }

    /// Loads the JWKS when the key is not known (at most every `minRefresh`) or the copy is old.
    private func ensureKey(_ kid: String) async throws {
        let now = ContinuousClock.now
        let stale = fetched.map { now - $0 > configuration.refresh } ?? true
        let mayFetch = fetched.map { now - $0 >= configuration.minRefresh } ?? true
        if (!kids.contains(kid) || stale) && mayFetch {
            do {
                try await load(try await fetchKeys())
                fetched = now
            } catch {
                // The keys in hand still serve; a key they lack is refused below.
                fetched = now
            }
        }
        guard kids.contains(kid) else { throw Self.refusal("its key '\(kid)' is not one of the issuer's") }
    }

    private func load(_ document: [UInt8]) async throws {
        let jwks = try JSONDecoder().decode(JWKS.self, from: Data(document))
        let usable = jwks.keys.filter { key in
            key.keyIdentifier != nil && [JWK.KeyType.rsa, .ecdsa, .octetKeyPair].contains(key.keyType)
        }.prefix(Self.maxKeys)
        let collection = JWTKeyCollection()
        var identifiers: Set<String> = []
        for key in usable {
            do {
                try await collection.add(jwk: key)
                if let kid = key.keyIdentifier?.string { identifiers.insert(kid) }
            } catch {
                continue
            }
        }
        keys = collection
        kids = identifiers
    }

    static func refusal(_ reason: String) -> APIError {
        APIError.unauthorized("The bearer token is not valid: \(reason).")
    }

    static func base64URL(_ part: Substring) -> [UInt8]? {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map(Array.init)
    }

    /// Every claim, as JSON; the checks are made above with the configuration.
    struct Claims: JWTPayload {
        var values: [String: JSONValue]

        init(from decoder: any Decoder) throws {
            values = try [String: JSONValue](from: decoder)
        }

        func encode(to encoder: any Encoder) throws {
            try values.encode(to: encoder)
        }

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}
