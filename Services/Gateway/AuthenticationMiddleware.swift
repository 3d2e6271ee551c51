import ConduitKit
import ConduitProtocol
import Foundation
import Hummingbird
import Logging

/// Requires `Authorization: Bearer <key>` on every route of the group it guards (all of `/v1`;
/// health and metrics are outside it) and puts the caller's identity in the context, signed for
/// the internal services behind. Missing or unknown keys get a 401 envelope.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let authenticator: APIKeyAuthenticator
    let keyring: InternalKeyring
    var audit: (any AuditRecorder)?
    /// Bearer JWTs, when an issuer is configured.
    var jwt: JWTVerifier?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let identity: CallerIdentity
        do {
            identity = try await authenticate(request)
        } catch let error as APIError where error.status == .unauthorized {
            // Only this gateway's own refusals are authentication failures (not a 401 from behind).
            audit?.record(AuditEvent(
                requestID: context.requestID, tenant: nil, keyID: nil, action: "auth.failed", resource: "\(request.method.rawValue) \(request.uri.path)",
                outcome: "denied", status: 401, timestamp: Date(), sourceAddress: context.sourceAddress))
            throw error
        }
        var context = context
        context.identity = identity
        do {
            context.identityToken = try keyring.sign(identity, requestID: context.requestID)
        } catch {
            context.logger.error("could not sign the caller's identity", metadata: [LogKey.error: "\(error)"])
            throw APIError(status: .internalServerError, type: .server, message: "The caller's identity could not be signed.", code: "identity_error")
        }
        return try await next(request, context)
    }

    /// The caller the bearer names: an API key's, or a JWT's; a 401 otherwise.
    private func authenticate(_ request: Request) async throws -> CallerIdentity {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
              case let key = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces), !key.isEmpty else {
            throw APIError.unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        }
        if JWTVerifier.looksLikeJWT(key) {
            guard let jwt else { throw APIError.unauthorized("Bearer JWTs are not accepted here: no issuer is configured (CONDUIT_JWT_ISSUER).") }
            return try await jwt.identity(for: key)
        }
        guard let known = try await authenticator.identity(forKey: key) else {
            // Never echo the key: a prefix is enough for a person to tell keys apart.
            throw APIError.unauthorized("Incorrect API key provided: \(key.prefix(7))…")
        }
        return known
    }
}
