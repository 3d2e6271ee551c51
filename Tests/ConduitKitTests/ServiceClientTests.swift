import ConduitHTTP
import ConduitKit
import Foundation
import HTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing
import TestSupport

/// A call to another service carries the caller's request id, trace and identity.
struct ServiceClientTests {
    @Test func propagatesRequestIDTraceAndIdentityHeaders() async throws {
        let captured = Locked<[String: String]>([:])
        let downstream = try TestHTTPServer { request, connection in
            captured.withLock { $0 = request.headers }
            connection.respond(body: Array(#"{"ok":true}"#.utf8))
        }
        let http = HTTPClient(logger: Logger(label: "client"))
        let services = ServiceClient(http: http, baseURLs: [.orchestrator: downstream.baseURL])
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment([:]))
        let router = makeConduitRouter(configuration: configuration, registry: PrometheusCollectorRegistry(), readiness: [])
        router.post("/forward") { _, context -> String in
            var context = context
            context.identityToken = "signed-token"
            let headers = ServiceClient.propagatedHeaders(from: context, extra: [("X-Conduit-Session-Id", "s-1")])
            let response = try await services.send(to: .orchestrator, path: "/v1/pipeline", body: Array("{}".utf8), headers: headers)
            return "\(response.status)"
        }
        let app = makeConduitApplication(router: router, configuration: configuration, services: [], logger: Logger(label: "app"))
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        try await app.test(.router) { client in
            let headers: HTTPFields = [HTTPField.Name("X-Request-Id")!: "req-7", HTTPField.Name("traceparent")!: parent]
            try await client.execute(uri: "/forward", method: .post, headers: headers) { response in
                #expect(String(buffer: response.body) == "200")
            }
        }
        let sent = captured.withLock { $0 }
        #expect(sent["x-request-id"] == "req-7")
        #expect(sent["x-conduit-identity"] == "signed-token")
        #expect(sent["x-conduit-session-id"] == "s-1")
        #expect(sent["content-type"] == "application/json")
        let trace = try #require(sent["traceparent"].flatMap(TraceContext.init(traceparent:)))
        #expect(trace.traceID == "0af7651916cd43dd8448eb211c80319c")
        #expect(trace.spanID != "b7ad6b7169203331")
        await http.shutdown()
    }
}
