import ConduitKit
import HTTP

extension ServiceConfiguration {
    /// The HTTP client's limits (see `HTTPClientConfiguration`).
    public var http: HTTPClientConfiguration { HTTPClientConfiguration() }
}
