import ConduitKit
import Foundation
import Hummingbird

/// Requires `Authorization: Bearer <key>` on every `/v1` route and puts the caller's identity
/// in the context; health and metrics stay open. Missing or unknown keys get a 401 envelope.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let authenticator: APIKeyAuthenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
              case let key = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces), !key.isEmpty else {
            throw APIError.unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        }
        guard let identity = try await authenticator.identity(forKey: key) else {
            // Never echo the key: a prefix is enough for a person to tell keys apart.
            throw APIError.unauthorized("Incorrect API key provided: \(key.prefix(7))…")
        }
        var context = context
        context.identity = identity
        return try await next(request, context)
    }
}
