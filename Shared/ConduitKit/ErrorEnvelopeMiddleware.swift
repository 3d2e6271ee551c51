import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error a route throws into the OpenAI error envelope with a matching status.
/// Errors it does not know become a 500 whose message says nothing about internals; the real
/// error goes to the log.
public struct ErrorEnvelopeMiddleware: RouterMiddleware {
    public typealias Context = ConduitRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = Self.apiError(for: error, context: context)
            if apiError.status.code >= 500 {
                context.logger.error("request failed", metadata: [LogKey.error: "\(String(reflecting: error))"])
            }
            return Self.response(apiError)
        }
    }

    public static func response(_ error: APIError) -> Response {
        let body = (try? JSONEncoder().encode(error.envelope)) ?? Data(#"{"error":{"message":"error","type":"server_error","param":null,"code":null}}"#.utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func apiError(for error: any Error, context: Context) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as DecodingError:
            return APIError.invalidRequest(DecodingProblem.message(error), param: DecodingProblem.field(of: error))
        case let error as HTTPError:
            return Self.map(status: error.status, message: error.body)
        case let error as any HTTPResponseError:
            // e.g. NIOTooManyBytesError for a body over the limit.
            return Self.map(status: error.status, message: nil)
        case let error as any APIErrorConvertible:
            if let apiError = error.apiError { return apiError }
            return APIError(status: .internalServerError, type: .server, message: "The server had an error while processing your request (request id \(context.requestID)).")
        case is CancellationError:
            return APIError(status: .init(code: 499, reasonPhrase: "Client Closed Request"), type: .invalidRequest, message: "The request was cancelled.")
        default:
            return APIError(status: .internalServerError, type: .server, message: "The server had an error while processing your request (request id \(context.requestID)).")
        }
    }

    private static func map(status: HTTPResponse.Status, message body: String?) -> APIError {
        let message = body ?? status.reasonPhrase
        switch status.code {
        case 401: return APIError(status: status, type: .authentication, message: message)
        case 403: return APIError(status: status, type: .permission, message: message)
        case 404: return APIError(status: status, type: .invalidRequest, message: body ?? "Unknown path.", code: "not_found")
        case 405: return APIError(status: status, type: .invalidRequest, message: body ?? "Method not allowed.", code: "method_not_allowed")
        case 413: return APIError(status: status, type: .invalidRequest, message: "The request body is too large.", code: "payload_too_large")
        case 429: return APIError(status: status, type: .rateLimit, message: message)
        case 400..<500: return APIError(status: status, type: .invalidRequest, message: message)
        default: return APIError(status: status, type: .server, message: message)
        }
    }
}
