import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes

extension ServiceClient {
    /// One text's vector from the embedder service's `/v1/embeddings`. The embedder's own error
    /// (unknown model, bad input) keeps its status and message; an unreachable or failing
    /// embedder is a 502.
    public func embed(_ text: String, model: String, context: ConduitRequestContext) async throws -> [Float] {
        let request = EmbeddingsRequest(model: model, input: .text(text))
        let response: HTTP.HTTPResponse
        let bytes: [UInt8]
        do {
            response = try await send(to: .embedder, path: "/v1/embeddings", body: Array(try JSONEncoder().encode(request)),
                                      headers: Self.propagatedHeaders(from: context), timeout: .seconds(10))
            bytes = try await response.body.collect(upTo: 1 << 22)
        } catch {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder could not be reached.", code: "embedder_unavailable")
        }
        guard response.status == 200 else {
            if let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(bytes)) {
                throw APIError(status: .init(code: response.status), type: ErrorType(rawValue: envelope.error.type) ?? .upstream, message: envelope.error.message,
                               param: envelope.error.param == nil ? nil : "model", code: envelope.error.code)
            }
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder answered \(response.status).", code: "embedder_error")
        }
        guard let floats = try JSONDecoder().decode(EmbeddingsResponse.self, from: Data(bytes)).data.first?.embedding.floats else {
            throw APIError(status: .badGateway, type: .upstream, message: "The embedder returned no embedding.", code: "embedder_error")
        }
        return floats
    }
}
