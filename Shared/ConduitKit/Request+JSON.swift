import Foundation
import Hummingbird

extension Request {
    /// Decodes a JSON body. Unlike Hummingbird's `decode`, the `DecodingError` reaches the error
    /// middleware intact, so the caller is told which field is wrong and why; a body over the
    /// context's `maxUploadSize` is refused with 413.
    public func decodeJSON<T: Decodable>(_ type: T.Type, context: ConduitRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    }
}
