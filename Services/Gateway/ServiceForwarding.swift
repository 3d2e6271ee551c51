import ConduitHTTP
import ConduitKit
import HTTP

/// How the gateway reaches the internal services: `ServiceClient` over HTTP; an application
/// test answers in-process.
protocol ServiceForwarding: Sendable {
    func forward(to service: ServiceName, method: String, path: String, body: [UInt8]?,
                 headers: [(name: String, value: String)], timeout: Duration) async throws -> ForwardedResponse
}

/// A service's answer whose head has arrived; the body streams. Dropping the body before its
/// end closes the hop behind it.
struct ForwardedResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: any AsyncSequence<[UInt8], any Error> & Sendable

    func header(_ name: String) -> String? {
        HTTP.HTTPResponse.header(name, in: headers)
    }
}

extension ServiceClient: ServiceForwarding {
    func forward(to service: ServiceName, method: String, path: String, body: [UInt8]?,
                 headers: [(name: String, value: String)], timeout: Duration) async throws -> ForwardedResponse {
        let response = try await send(to: service, method: method, path: path, body: body, headers: headers, timeout: timeout)
        return ForwardedResponse(status: response.status, headers: response.headers, body: response.body)
    }
}
