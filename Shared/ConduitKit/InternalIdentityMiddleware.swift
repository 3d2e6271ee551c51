import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What every internal service puts in front of its routes: the request must carry an identity
/// the gateway signed (`X-Conduit-Identity`, see `InternalKeyring`), or it is refused with 401.
/// There is no default tenant: a route behind this middleware always has `context.identity`.
public struct InternalIdentityMiddleware: RouterMiddleware {
    public typealias Context = ConduitRequestContext
    let keyring: InternalKeyring

    public init(keyring: InternalKeyring) { self.keyring = keyring }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        do throws(IdentityError) {
            guard let token = request.headers[ConduitHeader.identityField] else { throw IdentityError(.missing) }
            context.identity = try keyring.verify(token, requestID: context.requestID)
            context.identityToken = token
        } catch {
            context.logger.notice("request refused: \(error)")
            throw APIError(status: .unauthorized, type: .authentication, message: "Refused: \(error).", code: "invalid_internal_identity")
        }
        return try await next(request, context)
    }
}

extension Router<ConduitRequestContext> {
    /// The group an internal service adds its routes to: each needs the gateway's signature.
    public func internalRoutes(_ configuration: ServiceConfiguration) throws -> RouterGroup<ConduitRequestContext> {
        group().add(middleware: InternalIdentityMiddleware(keyring: try configuration.requireInternalKeys()))
    }
}

extension ConduitRequestContext {
    /// The signed caller of a route behind `InternalIdentityMiddleware` (or the gateway's
    /// authentication); a route that is reached without one is refused, never defaulted.
    public func caller() throws -> CallerIdentity {
        guard let identity else { throw APIError.unauthorized("This route needs an authenticated caller.") }
        return identity
    }

    /// The caller's tenant (see `caller()`).
    public func callerTenant() throws -> String { try caller().tenant }
}
