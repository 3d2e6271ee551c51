import Foundation
import Hummingbird

extension ConduitRequestContext {
    /// A path parameter as the caller meant it: Hummingbird hands over the raw segment, still
    /// percent-encoded (`my%20doc`, `caf%C3%A9`, `a%2Fb`), so ids that need escaping round-trip
    /// only once decoded here. A segment that does not decode to UTF-8 is a 400 naming it.
    public func pathParameter(_ name: String) throws -> String {
        let raw = parameters.get(name) ?? ""
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError.invalidRequest("The path segment '\(name)' is not valid percent-encoded UTF-8.", param: name)
        }
        return decoded
    }
}

/// One path segment for a URL to another service: everything but unreserved characters escaped,
/// `/` included, so the id arrives as one segment and decodes to itself.
public func escapedPathSegment(_ segment: String) -> String {
    segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? segment
}
