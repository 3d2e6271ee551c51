import ConduitProtocol
import Foundation
import HTTP
import Logging
import Prometheus
import Providers
import TestSupport
import Testing

/// Retries, fallback, timeouts and cuts, for every provider family, each against a local server
/// speaking that provider's wire format. Backoff waits are recorded instead of slept, so no test
/// depends on wall-clock time.
@Suite struct ProviderRouterTests {
    final class Sleeps: Sendable {
        private let recorded = Locked([Duration]())
        var all: [Duration] { recorded.withLock { $0 } }
        func record(_ duration: Duration) { recorded.withLock { $0.append(duration) } }
    }

    static func router(_ deployments: [Deployment], fallbacks: [CatalogModel] = [], policy: RetryPolicy = .init(), threshold: Int = 3, sleeps: Sleeps, http: HTTPClient) throws -> ProviderRouter {
        let primary = CatalogModel(name: "chat", deployments: deployments, fallbacks: fallbacks.map(\.name))
        return ProviderRouter(
            catalog: try ModelCatalog(models: [primary] + fallbacks), client: ProviderClient(http: http, keys: ProviderFixtures.keys),
            policy: policy, breakerThreshold: threshold, registry: PrometheusCollectorRegistry(), logger: Logger(label: "test"),
            sleep: { sleeps.record($0) })
    }

    static func request(stream: Bool = false) -> ChatCompletionRequest {
        var request = ChatCompletionRequest(model: "chat", messages: [.system("Be brief."), .user("Say hello")], stream: stream ? true : nil)
        request.maxTokens = 16
        return request
    }

    static func collect(_ stream: ProviderStream) async throws -> (text: String, finish: String?, usage: ProviderUsage?) {
        var text = ""
        var finish: String?
        var usage: ProviderUsage?
        for try await event in stream {
            switch event {
            case .chunk(let chunk):
                text += chunk.choices.compactMap(\.delta.content).joined()
                finish = chunk.choices.compactMap(\.finishReason).first ?? finish
            case .finished(let reported):
                usage = reported
            }
        }
        return (text, finish, usage)
    }

    @Test("completes and streams against a local server speaking the provider's wire format", arguments: ProviderKind.allCases)
    func completesAndStreams(kind: ProviderKind) async throws {
        let provider = try ScriptedProvider(kind, [.ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let router = try Self.router([ProviderFixtures.deployment(kind, id: "only", server: provider.server)], sleeps: Sleeps(), http: http)

        let (completion, served) = try await router.complete(Self.request())
        #expect(completion.choices.first?.message.content?.plainText == "Hello there")
        #expect(completion.choices.first?.finishReason == "stop")
        #expect(completion.model == "chat")
        #expect(completion.usage?.promptTokens == 12)
        #expect(completion.usage?.completionTokens == 2)
        #expect(completion.usage?.promptTokensDetails?.cachedTokens == 4)
        #expect(served.attempts == 1)

        let (stream, _) = try await router.stream(Self.request(stream: true))
        let streamed = try await Self.collect(stream)
        #expect(streamed.text == "Hello there")
        #expect(streamed.finish == "stop")
        #expect(streamed.usage == ProviderUsage(promptTokens: 12, completionTokens: 2, cachedTokens: 4))
        await http.shutdown()
    }

    @Test("a 429 is retried after exactly its Retry-After", arguments: ProviderKind.allCases)
    func honoursRetryAfter(kind: ProviderKind) async throws {
        let provider = try ScriptedProvider(kind, [.status(429, retryAfter: "2"), .ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let sleeps = Sleeps()
        let router = try Self.router([ProviderFixtures.deployment(kind, id: "only", server: provider.server)], sleeps: sleeps, http: http)
        let (completion, served) = try await router.complete(Self.request())
        #expect(completion.choices.first?.message.content?.plainText == "Hello there")
        #expect(served.attempts == 2)
        #expect(sleeps.all == [.seconds(2)])
        #expect(provider.requests.count == 2)
        await http.shutdown()
    }

    @Test("a 500 is retried with a jittered backoff and the second answer is served", arguments: ProviderKind.allCases)
    func retriesServerError(kind: ProviderKind) async throws {
        let provider = try ScriptedProvider(kind, [.status(500), .ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let sleeps = Sleeps()
        let router = try Self.router([ProviderFixtures.deployment(kind, id: "only", server: provider.server)],
                                     policy: RetryPolicy(baseDelay: .milliseconds(400)), sleeps: sleeps, http: http)
        let (stream, served) = try await router.stream(Self.request(stream: true))
        #expect(try await Self.collect(stream).text == "Hello there")
        #expect(served.attempts == 2)
        #expect(sleeps.all.count == 1)
        #expect(sleeps.all.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        await http.shutdown()
    }

    @Test("a deployment that does not answer in time is left for the next one", arguments: ProviderKind.allCases)
    func timeoutFallsBack(kind: ProviderKind) async throws {
        let slow = try ScriptedProvider(kind, [.stall(seconds: 5)])
        let fast = try ScriptedProvider(kind, [.ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let quick = Deployment.Timeouts(firstByte: .milliseconds(300), total: .milliseconds(600))
        let router = try Self.router(
            [ProviderFixtures.deployment(kind, id: "slow", server: slow.server, timeouts: quick), ProviderFixtures.deployment(kind, id: "fast", server: fast.server)],
            policy: RetryPolicy(maxRetries: 1), sleeps: Sleeps(), http: http)

        let (stream, served) = try await router.stream(Self.request(stream: true))
        #expect(try await Self.collect(stream).text == "Hello there")
        #expect(served.deployment.id == "fast")
        #expect(served.attempts == 3)  // two timed-out attempts at the slow one
        let (completion, servedAgain) = try await router.complete(Self.request())
        #expect(completion.choices.first?.message.content?.plainText == "Hello there")
        #expect(servedAgain.deployment.id == "fast")
        await http.shutdown()
    }

    @Test("a stream cut mid-way ends with an interrupted error after its first chunks", arguments: ProviderKind.allCases)
    func midStreamCut(kind: ProviderKind) async throws {
        let provider = try ScriptedProvider(kind, [.cut])
        let http = HTTPClient(logger: Logger(label: "test"))
        let router = try Self.router([ProviderFixtures.deployment(kind, id: "only", server: provider.server)], sleeps: Sleeps(), http: http)
        let (stream, _) = try await router.stream(Self.request(stream: true))
        var chunks = 0
        do {
            for try await event in stream { if case .chunk = event { chunks += 1 } }
            Issue.record("the cut stream ended without an error")
        } catch let error as ProviderError {
            #expect(error.code == .streamInterrupted)
        }
        #expect(chunks >= 1)
        await http.shutdown()
    }

    @Test("repeated 5xx fall back to the second deployment and open the first one's circuit", arguments: ProviderKind.allCases)
    func fallbackAndCircuitBreaker(kind: ProviderKind) async throws {
        let failing = try ScriptedProvider(kind, [.status(503)])
        let healthy = try ScriptedProvider(kind, [.ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let sleeps = Sleeps()
        let router = try Self.router(
            [ProviderFixtures.deployment(kind, id: "failing", server: failing.server), ProviderFixtures.deployment(kind, id: "healthy", server: healthy.server)],
            policy: RetryPolicy(maxRetries: 2), threshold: 3, sleeps: sleeps, http: http)

        let (completion, served) = try await router.complete(Self.request())
        #expect(completion.choices.first?.message.content?.plainText == "Hello there")
        #expect(served.deployment.id == "healthy")
        #expect(failing.requests.count == 3)
        #expect(router.isCircuitOpen("failing"))
        // A router (model: auto) rating this model finds it served by the healthy deployment.
        let availability = router.availability(of: router.catalog.models[0].name)
        #expect(availability.deployment?.id == "healthy" && availability.healthy)

        // While the circuit is open the failing deployment is not even tried.
        let (_, servedAgain) = try await router.complete(Self.request())
        #expect(servedAgain.deployment.id == "healthy")
        #expect(servedAgain.attempts == 1)
        #expect(failing.requests.count == 3)
        await http.shutdown()
    }

    @Test("when every deployment of a model fails, its fallback model serves")
    func fallbackModel() async throws {
        let failing = try ScriptedProvider(.anthropic, [.status(500)])
        let backup = try ScriptedProvider(.openAI, [.ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let backupModel = CatalogModel(name: "backup", deployments: [ProviderFixtures.deployment(.openAI, id: "backup-openai", server: backup.server)])
        let router = try Self.router([ProviderFixtures.deployment(.anthropic, id: "claude", server: failing.server)],
                                     fallbacks: [backupModel], policy: RetryPolicy(maxRetries: 0), sleeps: Sleeps(), http: http)
        let (completion, served) = try await router.complete(Self.request())
        #expect(served.model == "backup")
        #expect(completion.model == "backup")
        #expect(served.deployment.id == "backup-openai")
        await http.shutdown()
    }

    @Test("a request the provider rejects (400) is not retried and not failed over")
    func badRequestIsNotRetried() async throws {
        let provider = try ScriptedProvider(.openAI, [.status(400)])
        let other = try ScriptedProvider(.openAI, [.ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        let router = try Self.router([ProviderFixtures.deployment(.openAI, id: "a", server: provider.server), ProviderFixtures.deployment(.openAI, id: "b", server: other.server)],
                                     sleeps: Sleeps(), http: http)
        await #expect(throws: ProviderError.self) { try await router.complete(Self.request()) }
        #expect(provider.requests.count == 1)
        #expect(other.requests.isEmpty)
        #expect(!router.isCircuitOpen("a"))
        await http.shutdown()
    }

    @Test("a provider that quotes the rejected key back does not get it into our errors")
    func rejectedKeyIsNotEchoed() async throws {
        let key = "sk-test-openai"
        let requests = Locked(0)
        let server = try TestHTTPServer { request, connection in
            requests.withLock { $0 += 1 }
            let quoted = request.headers["authorization"]?.replacingOccurrences(of: "Bearer ", with: "") ?? ""
            connection.respond(status: 401, headers: ["Content-Type": "application/json"],
                               body: Array(#"{"error":{"message":"Incorrect API key provided: \#(quoted).","type":"invalid_request_error","code":"invalid_api_key"}}"#.utf8))
        }
        let http = HTTPClient(logger: Logger(label: "test"))
        let router = try Self.router([ProviderFixtures.deployment(.openAI, id: "keyed", server: server)], sleeps: Sleeps(), http: http)
        do {
            _ = try await router.complete(Self.request())
            Issue.record("a 401 was served")
        } catch let error as ProviderError {
            #expect(error.code == .authentication)
            #expect(error.message.contains("Incorrect API key provided"))
            #expect(!"\(error)".contains(key))
        }
        #expect(requests.withLock { $0 } == 1)  // a bad key is not retried
        await http.shutdown()
    }

    @Test("unknown models and models without a configured key are told apart")
    func routingErrors() async throws {
        let http = HTTPClient(logger: Logger(label: "test"))
        let keyed = Deployment(id: "keyed", provider: .openAI, upstreamModel: "m", baseURL: "http://127.0.0.1:9/v1", apiKeyVariable: "UNSET_KEY")
        let router = ProviderRouter(catalog: try ModelCatalog(models: [CatalogModel(name: "needs-key", deployments: [keyed])]),
                                    client: ProviderClient(http: http, keys: APIKeys(environment: [:])), registry: PrometheusCollectorRegistry(), logger: Logger(label: "test"))
        await #expect(throws: RoutingError.unknownModel("nope")) { try await router.complete(ChatCompletionRequest(model: "nope", messages: [.user("hi")])) }
        await #expect(throws: RoutingError.noConfiguredDeployment("needs-key")) { try await router.complete(ChatCompletionRequest(model: "needs-key", messages: [.user("hi")])) }
        #expect(router.availableModels.isEmpty)
        await http.shutdown()
    }
}

extension ProviderRouterTests {
    static func imageRequest() -> ChatCompletionRequest {
        ChatCompletionRequest(model: "chat", messages: [.init(role: "user", content: .parts([.text("What is this?"), .imageURL(url: "data:image/png;base64,iVBORw0KGgo=", detail: nil)]))])
    }

    @Test("images for a model that reads none are the caller's 400: never sent, never a failure of the deployment")
    func imagesForATextOnlyModelNeverReachItNorOpenItsCircuit() async throws {
        let provider = try ScriptedProvider(.openAI, [.ok, .ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        var textOnly = ProviderFixtures.deployment(.openAI, id: "text-only", server: provider.server)
        textOnly.acceptsImages = false
        let router = try Self.router([textOnly], threshold: 3, sleeps: Sleeps(), http: http)
        for _ in 0..<5 {
            await #expect(throws: RoutingError.imagesNotAccepted("chat", param: "messages[0].content[1]")) { try await router.complete(Self.imageRequest()) }
        }
        #expect(provider.requests.isEmpty)
        #expect(!router.isCircuitOpen("text-only"))
        // Other tenants' text requests are served as before.
        #expect(try await router.complete(Self.request()).1.deployment.id == "text-only")
        await http.shutdown()
    }

    @Test("an image request skips deployments that read no images and goes to one that does")
    func imagesGoToADeploymentThatReadsThem() async throws {
        let textProvider = try ScriptedProvider(.openAI, [.ok])
        let visionProvider = try ScriptedProvider(.openAI, [.ok])
        let http = HTTPClient(logger: Logger(label: "test"))
        var textOnly = ProviderFixtures.deployment(.openAI, id: "text-only", server: textProvider.server)
        textOnly.acceptsImages = false
        let vision = CatalogModel(name: "vision", deployments: [ProviderFixtures.deployment(.openAI, id: "vision", server: visionProvider.server)])
        let router = try Self.router([textOnly], fallbacks: [vision], sleeps: Sleeps(), http: http)
        let (_, served) = try await router.complete(Self.imageRequest())
        #expect(served.deployment.id == "vision")
        #expect(textProvider.requests.isEmpty)
        await http.shutdown()
    }
}
