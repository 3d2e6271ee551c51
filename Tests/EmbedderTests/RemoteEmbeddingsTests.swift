import ConduitKit
import ConduitProtocol
@testable import Embedder
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TestSupport

/// Remote embedding models, against local HTTP servers that speak OpenAI's and Azure OpenAI's
/// documented embeddings wire formats.
@Suite(.timeLimit(.minutes(1)))
struct RemoteEmbeddingsTests {
    /// A server answering like OpenAI's `/v1/embeddings`: two floats per input, and the request it saw.
    static func provider(status: Int = 200) throws -> (TestHTTPServer, Locked<TestHTTPServer.Request?>) {
        let seen = Locked<TestHTTPServer.Request?>(nil)
        let server = try TestHTTPServer { request, connection in
            seen.withLock { $0 = request }
            if status != 200 {
                connection.respond(status: status, body: Array(#"{"error":{"message":"slow down","type":"requests","param":null,"code":null}}"#.utf8))
                return
            }
            let body = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any]
            let inputs = (body?["input"] as? [Any])?.count ?? 1
            let data = (0..<inputs).map { #"{"object":"embedding","index":\#($0),"embedding":[0.5,-0.25]}"# }.joined(separator: ",")
            connection.respond(body: Array(#"{"object":"list","data":[\#(data)],"model":"upstream-name","usage":{"prompt_tokens":3,"total_tokens":3}}"#.utf8))
        }
        return (server, seen)
    }

    static func app(remote: String, extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        var values = [
            "CONDUIT_MINILM_DIR": TestEnvironment.miniLMDirectory.path,
            "CONDUIT_KAFKA_BROKERS": TestEnvironment.kafkaBrokers,
            "CONDUIT_EMBEDDER_REMOTE_MODELS": remote,
            "TEST_PROVIDER_KEY": "sk-test-123",
            "CONDUIT_INTERNAL_KEY": TestIdentity.key,
        ]
        values.merge(extra) { _, new in new }
        let configuration = try ServiceConfiguration(service: .embedder, environment: ConduitEnvironment(values))
        return try await buildApplication(configuration: configuration, logger: Logger(label: "remote-test"))
    }

    @Test func openAICompatibleProviderGetsTheRequestWithItsModelNameAndKey() async throws {
        let (server, seen) = try Self.provider()
        let remote = #"[{"name":"text-embedding-3-small","kind":"openai","base_url":"\#(server.baseURL)/v1","model":"upstream-name","api_key_env":"TEST_PROVIDER_KEY"}]"#
        try await Self.app(remote: remote).test(.router) { client in
            let response = try await EmbeddingsAPITests.post(client, #"{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64"}"#)
            #expect(response.status == .ok)
            let decoded = try EmbeddingsAPITests.decode(EmbeddingsResponse.self, response)
            #expect(decoded.model == "text-embedding-3-small")
            #expect(decoded.data.count == 2)
            guard case .base64 = decoded.data[0].embedding else { Issue.record("expected base64 as asked"); return }
            #expect(decoded.data[0].embedding.floats == [0.5, -0.25])
            let models = String(buffer: try await client.execute(uri: "/v1/models", method: .get, headers: TestIdentity.fields(tenant: "embedder-tests")).body)
            #expect(models.contains("text-embedding-3-small"))
        }
        let request = try #require(seen.withLock { $0 })
        #expect(request.path == "/v1/embeddings")
        #expect(request.headers["authorization"] == "Bearer sk-test-123")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(body["model"] as? String == "upstream-name")
    }

    @Test func azureDeploymentGetsItsPathVersionAndKeyHeader() async throws {
        let (server, seen) = try Self.provider()
        let remote = #"[{"name":"ada","kind":"azure","base_url":"\#(server.baseURL)","deployment":"ada-prod","api_version":"2024-02-01","api_key_env":"TEST_PROVIDER_KEY"}]"#
        try await Self.app(remote: remote).test(.router) { client in
            let response = try await EmbeddingsAPITests.post(client, #"{"model":"ada","input":"hello"}"#)
            #expect(response.status == .ok)
        }
        let request = try #require(seen.withLock { $0 })
        #expect(request.path == "/openai/deployments/ada-prod/embeddings?api-version=2024-02-01")
        #expect(request.headers["api-key"] == "sk-test-123")
        #expect(request.headers["authorization"] == nil)
    }

    @Test func providerFailuresMapToTheEnvelope() async throws {
        let (limited, _) = try Self.provider(status: 429)
        let (broken, _) = try Self.provider(status: 500)
        let remote = #"""
        [{"name":"limited","kind":"openai","base_url":"\#(limited.baseURL)/v1"},
         {"name":"broken","kind":"openai","base_url":"\#(broken.baseURL)/v1"},
         {"name":"gone","kind":"openai","base_url":"http://127.0.0.1:1/v1"}]
        """#
        try await Self.app(remote: remote).test(.router) { client in
            let rateLimited = try await EmbeddingsAPITests.post(client, #"{"model":"limited","input":"x"}"#)
            #expect(rateLimited.status == .tooManyRequests)
            #expect((try? EmbeddingsAPITests.decode(ErrorEnvelope.self, rateLimited))?.error.message.contains("slow down") == true)
            let failed = try await EmbeddingsAPITests.post(client, #"{"model":"broken","input":"x"}"#)
            #expect(failed.status == .badGateway)
            #expect((try? EmbeddingsAPITests.decode(ErrorEnvelope.self, failed))?.error.type == "upstream_error")
            let unreachable = try await EmbeddingsAPITests.post(client, #"{"model":"gone","input":"x"}"#)
            #expect(unreachable.status == .badGateway)
        }
    }

    @Test func invalidRemoteConfigurationStopsTheStartNamingTheVariable() async throws {
        await #expect(throws: ConfigurationError.self) { _ = try await Self.app(remote: "not json") }
        await #expect(throws: ConfigurationError.self) {
            _ = try await Self.app(remote: #"[{"name":"a","kind":"azure","base_url":"http://x"}]"#)
        }
    }
}
