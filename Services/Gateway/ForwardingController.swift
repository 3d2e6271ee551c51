import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// Routes the gateway passes to an internal service unchanged, with the caller's identity in
/// the `X-Conduit-*` headers: `/v1/embeddings` to the embedder, `/v1/search` to the retriever
/// (which scopes it to the caller's tenant).
struct ForwardingController: Sendable {
    let client: ServiceClient

    func addRoutes(to router: Router<ConduitRequestContext>) {
        router.post("/v1/embeddings") { request, context in try await forward(request, context, to: .embedder, path: "/v1/embeddings") }
        router.post("/v1/search") { request, context in try await forward(request, context, to: .retriever, path: "/v1/search") }
    }

    func forward(_ request: Request, _ context: ConduitRequestContext, to service: ServiceName, path: String) async throws -> Response {
        guard let identity = context.identity else { throw APIError.unauthorized("This route needs an API key.") }
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let response: HTTP.HTTPResponse
        do {
            response = try await client.send(
                to: service, path: path, body: Array(body.readableBytesView),
                headers: ServiceClient.propagatedHeaders(from: context, identity: identity.headers), timeout: .seconds(60))
        } catch {
            throw APIError(status: .badGateway, type: .upstream, message: "The \(service.rawValue) service could not be reached.", code: "service_unavailable")
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        var headers = HTTPFields()
        headers[.contentType] = response.header("Content-Type") ?? "application/json"
        return Response(status: .init(code: response.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
