import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

extension Request {
    /// Decodes a JSON body. Unlike Hummingbird's `decode`, the `DecodingError` reaches the error
    /// middleware intact, so the caller is told which field is wrong and why; a body over the
    /// context's `maxUploadSize` is refused with 413.
    public func decodeJSON<T: Decodable>(_ type: T.Type, context: ConduitRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        let data = Data(buffer.readableBytesView)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.dataCorrupted(corrupt) where corrupt.codingPath.isEmpty {
            // Valid JSON whose number does not fit its field: name the field, not the body.
            if let field = NumberFieldProbe.field(of: T.self, in: data) {
                throw APIError.invalidRequest("Invalid type for '\(field)': expected an integer.", param: field, code: "invalid_type")
            }
            throw DecodingError.dataCorrupted(corrupt)
        }
    }
}

/// A JSON response body (slashes left unescaped, as OpenAI's are).
public func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok, encoder: JSONEncoder? = nil) throws -> Response {
    let encoder = encoder ?? JSONEncoder()
    encoder.outputFormatting.insert(.withoutEscapingSlashes)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
