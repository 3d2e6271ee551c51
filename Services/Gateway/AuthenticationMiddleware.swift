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
        do {
            return try await authenticate(request, context: context, next: next)
        } catch let error as APIError where error.status == .unauthorized {
            audit?.record(AuditEvent(
                requestID: context.requestID, tenant: nil, keyID: nil, action: "auth.failed", resource: "\(request.method.rawValue) \(request.uri.path)",
                outcome: "denied", status: 401, timestamp: Date(), sourceAddress: context.sourceAddress))
            throw error
        }
    }

    private func authenticate(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
              case let key = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces), !key.isEmpty else {
            throw APIError.unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        }
        let identity: CallerIdentity
        if JWTVerifier.looksLikeJWT(key) {
            guard let jwt else { throw APIError.unauthorized("Bearer JWTs are not accepted here: no issuer is configured (CONDUIT_JWT_ISSUER).") }
            identity = try await jwt.identity(for: key)
        } else {
            guard let known = try await authenticator.identity(forKey: key) else {
                // Never echo the key: a prefix is enough for a person to tell keys apart.
                throw APIError.unauthorized("Incorrect API key provided: \(key.prefix(7))…")
            }
            identity = known
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
}
