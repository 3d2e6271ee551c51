import ConduitKit
import ConduitProtocol
import HTTPTypes
import Providers

/// How routing and provider failures reach the caller: OpenAI's statuses and error types, the
/// provider's own message where it helps, never a key or an internal address.
enum ChatErrors {
    static func apiError(for error: any Error) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case RoutingError.unknownModel(let name):
            return APIError(status: .notFound, type: .invalidRequest, message: "The model '\(name)' does not exist or you do not have access to it.", param: "model", code: "model_not_found")
        case RoutingError.noConfiguredDeployment(let name):
            return APIError(status: .serviceUnavailable, type: .server, message: "The model '\(name)' has no deployment with a configured API key.", param: "model", code: "model_unavailable")
        case RoutingError.imagesNotAccepted(let name, let param):
            return APIError(status: .badRequest, type: .invalidRequest, message: "The model '\(name)' does not accept image input; send text only or choose a model that reads images.",
                            param: param, code: "image_input_not_supported")
        case let error as ProviderError:
            return apiError(for: error)
        default:
            return APIError(status: .internalServerError, type: .server, message: "The server had an error while processing your request.")
        }
    }

    static func apiError(for error: ProviderError) -> APIError {
        let who = error.deployment.map { " (deployment \($0))" } ?? ""
        switch error.code {
        case .badRequest:
            return APIError(status: .badRequest, type: .invalidRequest, message: "The provider rejected the request: \(error.message)", code: "upstream_bad_request")
        case .contentFiltered:
            return APIError(status: .badRequest, type: .invalidRequest, message: error.message, code: "content_filter")
        case .rateLimited:
            var apiError = APIError(status: .tooManyRequests, type: .rateLimit, message: "Every deployment of this model is rate limited; try again later\(who).", code: "upstream_rate_limited")
            apiError.retryAfterSeconds = error.retryAfter.map { max(1, Int($0.components.seconds) + ($0.components.attoseconds > 0 ? 1 : 0)) }
            return apiError
        case .timeout:
            return APIError(status: .gatewayTimeout, type: .upstream, message: "The provider did not answer in time\(who).", code: "upstream_timeout")
        case .authentication:
            // The deployment's credentials, not the caller's: say so without the provider's words.
            return APIError(status: .badGateway, type: .upstream, message: "The provider refused this deployment's credentials\(who).", code: "upstream_authentication")
        case .cancelled:
            return APIError(status: .init(code: 499, reasonPhrase: "Client Closed Request"), type: .invalidRequest, message: "The request was cancelled.", code: "client_closed")
        default:
            return APIError(status: .badGateway, type: .upstream, message: "The provider failed: \(error.message)\(who).", code: "upstream_\(error.code)")
        }
    }
}
