import ConduitKit
import ConduitProtocol
@testable import Embedder
import Foundation
import Hummingbird
import Kafka
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TestSupport

/// The embedder's OpenAI-compatible API, through its router, on the real model.
@Suite(.timeLimit(.minutes(2)))
struct EmbeddingsAPITests {
    static func app(_ settings: [String: String] = [:]) async throws -> some ApplicationProtocol {
        var values = ["CONDUIT_MINILM_DIR": TestEnvironment.miniLMDirectory.path, "CONDUIT_KAFKA_BROKERS": TestEnvironment.kafkaBrokers,
                      "CONDUIT_INTERNAL_KEY": TestIdentity.key]
        values.merge(settings) { _, new in new }
        let configuration = try ServiceConfiguration(service: .embedder, environment: ConduitEnvironment(values))
        return try await buildApplication(configuration: configuration, logger: Logger(label: "embedder-test"))
    }

    static func post(_ client: some TestClientProtocol, _ json: String) async throws -> TestResponse {
        var headers = TestIdentity.fields(tenant: "embedder-tests")
        headers[.contentType] = "application/json"
        return try await client.execute(uri: "/v1/embeddings", method: .post, headers: headers, body: ByteBuffer(string: json))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
    }

    @Test func everyInputFormGivesNormalisedVectorsAndUsage() async throws {
        try await Self.app().test(.router) { client in
            let single = try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"The quick brown fox jumps over the lazy dog."}"#)
            #expect(single.status == .ok)
            let response = try Self.decode(EmbeddingsResponse.self, single)
            #expect(response.object == "list")
            #expect(response.model == "all-minilm-l6-v2")
            #expect(response.usage.promptTokens == 12)
            let vector = try #require(response.data.first?.embedding.floats)
            #expect(vector.count == 384)
            #expect(abs(vector[0] - 0.043934) < 1e-4)

            let many = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":["a","b","c"]}"#))
            #expect(many.data.map(\.index) == [0, 1, 2])

            // Token ids are this model's WordPiece ids: the fox sentence without [CLS]/[SEP].
            let ids = "[1996,4248,2829,4419,14523,2058,1996,13971,3899,1012]"
            let tokens = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":\#(ids)}"#))
            let tokenVector = try #require(tokens.data.first?.embedding.floats)
            #expect(zip(tokenVector, vector).reduce(0) { $0 + $1.0 * $1.1 } > 0.9999)

            let arrays = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":[\#(ids),[7592]]}"#))
            #expect(arrays.data.count == 2)
        }
    }

    @Test func base64IsTheSameVectorAsFloats() async throws {
        try await Self.app().test(.router) { client in
            let floats = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"hello"}"#))
            let base64 = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"hello","encoding_format":"base64"}"#))
            guard case .base64 = base64.data[0].embedding else { Issue.record("expected a base64 string"); return }
            #expect(base64.data[0].embedding.floats == floats.data[0].embedding.floats)
        }
    }

    @Test func badRequestsGetTheEnvelopeWithTheFieldNamed() async throws {
        try await Self.app(["CONDUIT_EMBEDDER_MAX_INPUTS": "3", "CONDUIT_EMBEDDER_MAX_INPUT_TOKENS": "20"]).test(.router) { client in
            let cases: [(String, HTTPResponse.Status, String?)] = [
                (#"{"model":"text-embedding-3-small","input":"x"}"#, .notFound, "model"),
                (#"{"model":"all-minilm-l6-v2","input":[]}"#, .badRequest, "input"),
                (#"{"model":"all-minilm-l6-v2","input":["ok",""]}"#, .badRequest, "input[1]"),
                (#"{"model":"all-minilm-l6-v2","input":["a","b","c","d"]}"#, .badRequest, "input"),
                (#"{"model":"all-minilm-l6-v2","input":"\#(String(repeating: "word ", count: 30))"}"#, .badRequest, "input"),
                (#"{"model":"all-minilm-l6-v2","input":[1,2,999999]}"#, .badRequest, "input"),
                (#"{"model":"all-minilm-l6-v2","input":"x","dimensions":512}"#, .badRequest, "dimensions"),
                (#"{"model":"all-minilm-l6-v2","input":"x","encoding_format":"int8"}"#, .badRequest, "encoding_format"),
                (#"{"model":"all-minilm-l6-v2","input":{"text":"x"}}"#, .badRequest, "input"),
                (#"{"model":"all-minilm-l6-v2""#, .badRequest, nil),
            ]
            for (body, status, param) in cases {
                let response = try await Self.post(client, body)
                #expect(response.status == status, "\(body)")
                let envelope = try? Self.decode(ErrorEnvelope.self, response)
                #expect(envelope?.error.param == param, "\(body)")
                #expect(envelope?.error.message.isEmpty == false)
            }
        }
    }

    @Test func overloadAnswers429AndTheRestSucceed() async throws {
        // A queue of 40 tokens and a long wait: the first request waits for company, the others overflow.
        try await Self.app(["CONDUIT_EMBEDDER_MAX_QUEUED_TOKENS": "40", "CONDUIT_EMBEDDER_MAX_WAIT_US": "300000"]).test(.router) { client in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let text = "request number \(index) with a handful of words to make thirty tokens or so in total here"
                        return try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"\#(text)"}"#).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.contains(.ok))
            #expect(statuses.contains(.tooManyRequests))
            #expect(statuses.allSatisfy { $0 == .ok || $0 == .tooManyRequests })
            let response = try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"after the burst"}"#)
            #expect(response.status == .ok)
        }
    }

    @Test func concurrentRequestsShareBatchesAndShowInMetrics() async throws {
        try await Self.app(["CONDUIT_EMBEDDER_MAX_WAIT_US": "50000"]).test(.router) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<6 {
                    group.addTask { _ = try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"sentence \#(index)"}"#) }
                }
                try await group.waitForAll()
            }
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            let count = Self.value(of: #"conduit_embedder_batch_inputs_count{model="all-minilm-l6-v2"}"#, in: metrics)
            let sum = Self.value(of: #"conduit_embedder_batch_inputs_sum{model="all-minilm-l6-v2"}"#, in: metrics)
            #expect(sum == 6)
            #expect(count < 6, "6 requests ran in \(count) batches")
            #expect(metrics.contains("conduit_embedder_tokens_embedded_total"))
            #expect(metrics.contains("conduit_embedder_inference_duration_seconds_bucket"))
        }
    }

    static func value(of series: String, in text: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
    }
}

extension EmbeddingsAPITests {
    /// Every embeddings request bills its tenant: one usage event of kind `embedding`.
    @Test func eachRequestEmitsAnEmbeddingUsageEventForTheSignedTenant() async throws {
        let topic = TestEnvironment.uniqueName("conduit.test.usage")
        try await Self.app(["CONDUIT_EMBEDDER_USAGE_TOPIC": topic]).test(.router) { client in
            let response = try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":["The quick brown fox jumps over the lazy dog.","b"]}"#)
            #expect(response.status == .ok)
        }
        let events = try await TestEnvironment.readMessages(topic, count: 1).map { try EventCoding.decoder().decode(UsageEvent.self, from: Data($0.value)) }
        #expect(events[0].kind == "embedding")
        #expect(events[0].tenant == "embedder-tests")
        #expect(events[0].promptTokens == 15)
        #expect(events[0].costUSD == 0)
        #expect(events[0].model == "all-minilm-l6-v2")
    }
}

extension EmbeddingsAPITests {
    /// The largest request the limits allow (2,048 inputs of 256 tokens) is cut into jobs of the
    /// batch budget, in order, none larger.
    @Test func theLargestRequestIsCutIntoJobsOfTheBatchBudget() {
        let sequences = (0..<2048).map { index in [index] + Array(repeating: 7, count: 255) }
        let parts = EmbeddingBatcher.parts(of: sequences, maxTokens: 8192)
        #expect(parts.count == 64)
        #expect(parts.allSatisfy { sequences[$0].reduce(0) { $0 + $1.count } <= 8192 })
        #expect(parts.flatMap { Array($0) } == Array(0..<2048))
        // Uneven sizes: never over budget, never an empty part, one long sequence alone.
        let mixed = [[Int]](repeating: [1, 2, 3], count: 5) + [Array(repeating: 1, count: 20)] + [[1]]
        let mixedParts = EmbeddingBatcher.parts(of: mixed, maxTokens: 10)
        #expect(mixedParts == [0..<3, 3..<5, 5..<6, 6..<7])
    }

    /// Through the real model: a request of many long inputs runs as forward passes no larger
    /// than the budget, and every vector is the one the input gets on its own.
    @Test func aLongRequestRunsInBudgetedBatchesAndGivesTheSameVectors() async throws {
        let long = String(repeating: "Embeddings of long inputs are cut to the model's window of tokens. ", count: 30)
        try await Self.app(["CONDUIT_EMBEDDER_MAX_BATCH_TOKENS": "1024"]).test(.router) { client in
            let inputs = (0..<12).map { "\($0) \(long)" }
            let json = #"{"model":"all-minilm-l6-v2","input":["# + inputs.map { #""\#($0)""# }.joined(separator: ",") + "]}"
            let response = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, json))
            #expect(response.data.count == 12)
            #expect(response.usage.promptTokens == 12 * 256)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            let batches = Self.value(of: #"conduit_embedder_batch_tokens_count{model="all-minilm-l6-v2"}"#, in: metrics)
            let withinBudget = Self.value(of: #"conduit_embedder_batch_tokens_bucket{model="all-minilm-l6-v2",le="1024.0"}"#, in: metrics)
            #expect(batches >= 3)
            #expect(withinBudget == batches, "\(batches) batches, \(withinBudget) within 1,024 tokens")
            let last = try Self.decode(EmbeddingsResponse.self, try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":"\#(inputs[11])"}"#))
            let alone = try #require(last.data.first?.embedding.floats)
            let together = try #require(response.data[11].embedding.floats)
            #expect(zip(alone, together).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test func aRequestOverTheTokenCapIsRefusedNamingTheLimit() async throws {
        try await Self.app(["CONDUIT_EMBEDDER_MAX_REQUEST_TOKENS": "100"]).test(.router) { client in
            let response = try await Self.post(client, #"{"model":"all-minilm-l6-v2","input":["# + Array(repeating: #""one two three four five six seven eight nine ten eleven twelve""#, count: 8).joined(separator: ",") + "]}")
            #expect(response.status == .badRequest)
            let error = try Self.decode(ErrorEnvelope.self, response).error
            #expect(error.param == "input")
            #expect(error.message.contains("100") && error.message.contains("CONDUIT_EMBEDDER_MAX_REQUEST_TOKENS"))
        }
    }
}
