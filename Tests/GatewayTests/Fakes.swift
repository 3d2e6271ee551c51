import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import Hummingbird
import Prometheus
import TestSupport

/// In-process stand-ins for what the gateway's routes stand on (the application tier: no
/// server is started). The real ones are tested against real servers in GatewayStoreTests.
final class InMemoryAPIKeyStore: APIKeyStore {
    private let keys = Locked<[Data: CallerIdentity]>([:])
    private let lookups = Locked(0)
    /// Lookups that reached the store (the authenticator caches the rest).
    var lookupCount: Int { lookups.withLock { $0 } }
    var hashes: Set<Data> { Set(keys.withLock { $0.keys }) }

    func identity(forHash hash: Data) async throws -> CallerIdentity? {
        lookups.withLock { $0 += 1 }
        return keys.withLock { $0[hash] }
    }

    func installAdminKey(hash: Data, tenant: String) async throws {
        keys.withLock { keys in
            keys = keys.filter { $0.value.keyID != "admin-" + tenant }
            keys[hash] = CallerIdentity(tenant: tenant, keyID: "admin-" + tenant, roles: ["admin"])
        }
    }
}

/// Indexing requests kept in a list; `failure` makes the queue refuse everything.
final class RecordingIndexingQueue: IndexingQueue {
    private let queued = Locked<[IndexingRequest]>([])
    let failure: IndexingQueueError?
    var requests: [IndexingRequest] { queued.withLock { $0 } }

    init(failure: IndexingQueueError? = nil) { self.failure = failure }

    func enqueue(_ requests: [IndexingRequest]) async throws {
        if let failure { throw failure }
        queued.withLock { $0 += requests }
    }
}

/// The internal services: each call is written down; the orchestrator answers JSON, or an event
/// stream on `/v1/chat/completions` when the body asks for one; the retriever is unreachable.
final class FakeServices: ServiceForwarding {
    struct Call {
        var service: ServiceName
        var method: String
        var path: String
        var body: [UInt8]?
        var headers: [String: String]
    }
    private let calls = Locked<[Call]>([])
    var received: [Call] { calls.withLock { $0 } }

    func forward(to service: ServiceName, method: String, path: String, body: [UInt8]?,
                 headers: [(name: String, value: String)], timeout: Duration) async throws -> ForwardedResponse {
        calls.withLock { $0.append(Call(service: service, method: method, path: path, body: body,
                                        headers: Dictionary(headers.map { ($0.name.lowercased(), $0.value) }) { $1 })) }
        if service == .retriever { throw URLError(.cannotConnectToHost) }
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        if let body, JSONValue.parse(body)?["stream"] == true {
            for frame in [#"data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#, "data: [DONE]"] {
                continuation.yield(Array((frame + "\n\n").utf8))
            }
            continuation.finish()
            return ForwardedResponse(status: 200, headers: [("Content-Type", "text/event-stream"), ("X-Conduit-Deployment", "tiny-local"), ("X-Internal-Secret", "no")], body: stream)
        }
        continuation.yield(Array(#"{"object":"list","#.utf8))
        continuation.yield(Array(#""data":[]}"#.utf8))
        continuation.finish()
        return ForwardedResponse(status: 200, headers: [("Content-Type", "application/json"), ("X-Conduit-Session-Id", "s1")], body: stream)
    }
}

struct GatewayHarness {
    var keys = InMemoryAPIKeyStore()
    var indexing = RecordingIndexingQueue()
    var services = FakeServices()
    var environment: [String: String] = [:]
    let key = APIKeyAuthenticator.generateKey()
    let tenant = "acme"

    /// The gateway's routes over the fakes, with `key` installed as the tenant's admin key.
    func app() async throws -> some ApplicationProtocol {
        try await APIKeyAuthenticator(store: keys).installAdminKey(key, tenant: tenant)
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(TestIdentity.environment.merging(environment) { $1 }))
        let router = try buildRouter(
            configuration: configuration, dependencies: GatewayDependencies(keys: keys, indexing: indexing, services: services),
            registry: PrometheusCollectorRegistry())
        return Application(router: router)
    }
}
