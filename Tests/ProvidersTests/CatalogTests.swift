import ConduitProtocol
import Foundation
import Providers
import Testing

@Suite struct CatalogTests {
    static let yaml = """
    models:
      - name: local
        deployments:
          - id: local-a
            provider: openai
            model: tiny
            base_url: ${LOCAL_URL:-http://127.0.0.1:1/v1}
            price_per_million: {input: 1.5, output: 3, cached_input: 0.5}
            timeouts: {first_byte_s: 2.5, total_s: 9}
      - name: cloud
        fallbacks: [local]
        deployments:
          - id: cloud-a
            provider: anthropic
            model: claude
            api_key_env: CLOUD_KEY
    """

    @Test func readsDeploymentsPricesAndTimeoutsWithEnvironmentDefaults() throws {
        let catalog = try ModelCatalog(yaml: Self.yaml, environment: [:])
        let local = try #require(catalog.model(named: "local")?.deployments.first)
        #expect(local.baseURL == "http://127.0.0.1:1/v1")
        #expect(local.prices == .init(input: 1.5, output: 3, cachedInput: 0.5))
        #expect(local.timeouts == .init(firstByte: .milliseconds(2500), total: .seconds(9)))
        #expect(catalog.model(named: "cloud")?.deployments.first?.baseURL == "https://api.anthropic.com")
        let overridden = try ModelCatalog(yaml: Self.yaml, environment: ["LOCAL_URL": "http://10.0.0.1:8000/v1"])
        #expect(overridden.model(named: "local")?.deployments.first?.baseURL == "http://10.0.0.1:8000/v1")
    }

    @Test func routesSkipDeploymentsWithoutKeysAndFollowFallbacks() throws {
        let catalog = try ModelCatalog(yaml: Self.yaml)
        #expect(catalog.route(for: "cloud", keys: APIKeys(environment: [:])).map(\.deployment.id) == ["local-a"])
        #expect(catalog.route(for: "cloud", keys: APIKeys(environment: ["CLOUD_KEY": "k"])).map(\.deployment.id) == ["cloud-a", "local-a"])
        #expect(catalog.availableModels(keys: APIKeys(environment: [:])).map(\.name) == ["local"])
    }

    @Test func retrievalDefaultsCacheThresholdAndTokenizerAreRead() throws {
        let catalog = try ModelCatalog(yaml: """
            models:
              - name: support
                rag: {collection: handbook, top_k: 3, mode: keyword, min_score: 0.5}
                cache_threshold: 0.97
                deployments:
                  - {id: s, provider: openai, model: m, base_url: "http://127.0.0.1:1/v1", tokenizer: llama.cpp}
            """)
        let model = try #require(catalog.model(named: "support"))
        #expect(model.defaultRAG == RAGOptions(collection: "handbook", topK: 3, mode: .keyword, minScore: 0.5))
        #expect(model.cacheThreshold == 0.97)
        #expect(model.deployments.first?.tokenizer == .llamaCpp)
        #expect { try ModelCatalog(yaml: "models:\n  - name: x\n    deployments:\n      - {id: a, provider: openai, model: m, tokenizer: tiktoken}\n") } throws: {
            "\($0)".contains("unknown tokenizer 'tiktoken'")
        }
        #expect { try ModelCatalog(yaml: "models:\n  - name: x\n    cache_threshold: 1.5\n    deployments:\n      - {id: a, provider: openai, model: m}\n") } throws: {
            "\($0)".contains("cache_threshold")
        }
    }

    @Test func costUsesTheCachedPriceForCachedTokens() {
        let prices = Deployment.Prices(input: 2, output: 10, cachedInput: 0.5)
        // 600 uncached × 2 + 400 cached × 0.5 + 100 × 10, per million.
        #expect(abs(prices.cost(of: ProviderUsage(promptTokens: 1000, completionTokens: 100, cachedTokens: 400)) - 0.0024) < 1e-12)
    }

    /// Reasoning tokens are part of the completion tokens: billed at the output price unless the
    /// catalog gives them their own (`price_per_million: {reasoning: …}`).
    @Test func reasoningTokensCostTheOutputPriceUnlessPricedOnTheirOwn() throws {
        let usage = ProviderUsage(promptTokens: 1000, completionTokens: 300, reasoningTokens: 200)
        // 1000 × 2 + 300 × 10, per million.
        #expect(abs(Deployment.Prices(input: 2, output: 10).cost(of: usage) - 0.005) < 1e-12)
        // 1000 × 2 + 100 × 10 + 200 × 4, per million.
        #expect(abs(Deployment.Prices(input: 2, output: 10, reasoning: 4).cost(of: usage) - 0.0038) < 1e-12)
        let catalog = try ModelCatalog(yaml: "models:\n  - name: x\n    deployments:\n      - {id: a, provider: openai, model: m, price_per_million: {input: 2, output: 10, reasoning: 4}}\n")
        #expect(catalog.models[0].deployments[0].prices.reasoning == 4)
        // Counts a provider got wrong (more cached than prompt tokens) never price below zero.
        #expect(Deployment.Prices(input: 2, output: 10, cachedInput: 1).cost(of: ProviderUsage(promptTokens: 10, completionTokens: 0, cachedTokens: 50)) >= 0)
    }

    @Test func mistakesAreNamed() {
        #expect { try ModelCatalog(yaml: "models:\n  - name: x\n    deployments:\n      - {id: a, provider: mistral, model: m}\n") } throws: {
            "\($0)".contains("unknown provider 'mistral'")
        }
        #expect { try ModelCatalog(yaml: "models:\n  - name: x\n    fallbacks: [y]\n    deployments:\n      - {id: a, provider: openai, model: m}\n") } throws: {
            "\($0)".contains("falls back to 'y'")
        }
        #expect { try ModelCatalog(yaml: "models:\n  - name: x\n    deployments:\n      - {id: a, provider: azure, model: m, base_url: 'https://x'}\n") } throws: {
            "\($0)".contains("api_version")
        }
        #expect { try ModelCatalog(yaml: "models:\n  - name: x\n    deployments:\n      - {provider: openai, model: m}\n") } throws: {
            "\($0)".contains("missing 'id'")
        }
    }

    @Test func theShippedCatalogLoadsAndServesTheLocalModelWithoutKeys() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let catalog = try ModelCatalog(yamlFile: root.appendingPathComponent("deploy/models.yaml").path)
        #expect(catalog.availableModels(keys: APIKeys(environment: [:])).map(\.name) == ["smollm2-135m"])
        #expect(catalog.route(for: "gpt-4o-mini", keys: APIKeys(environment: [:])).map(\.deployment.id) == ["local-smollm2"])
    }
}

@Suite struct ReliabilityPolicyTests {
    @Test func retryAfterIsReadAsSecondsOrAnHTTPDate() {
        #expect(RetryPolicy.retryAfter("3") == .seconds(3))
        #expect(RetryPolicy.retryAfter("0.5") == .milliseconds(500))
        let now = Date(timeIntervalSince1970: 1_700_000_000)  // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:13:30 GMT", now: now) == .seconds(10))
        #expect(RetryPolicy.retryAfter("soon") == nil)
    }

    @Test func backoffIsJitteredExponentialAndRetryAfterWins() {
        let policy = RetryPolicy(maxRetries: 3, baseDelay: .milliseconds(100), maxDelay: .milliseconds(300), maxRetryAfter: .seconds(5))
        let error = ProviderError(.serverError, message: "x")
        #expect(policy.delay(beforeRetry: 1, after: error, random: 0.5) == .milliseconds(50))
        #expect(policy.delay(beforeRetry: 2, after: error, random: 0.5) == .milliseconds(100))
        #expect(policy.delay(beforeRetry: 3, after: error, random: 0.999) ?? .zero <= .milliseconds(300))
        #expect(policy.delay(beforeRetry: 4, after: error) == nil)
        #expect(policy.delay(beforeRetry: 1, after: ProviderError(.rateLimited, message: "x", retryAfter: .seconds(2))) == .seconds(2))
        // A Retry-After longer than we are willing to wait moves on instead.
        #expect(policy.delay(beforeRetry: 1, after: ProviderError(.rateLimited, message: "x", retryAfter: .seconds(60))) == nil)
        #expect(policy.delay(beforeRetry: 1, after: ProviderError(.badRequest, message: "x")) == nil)
    }

    @Test func breakerOpensAfterThresholdProbesOnceAndCloses() {
        var breaker = CircuitBreakerStateMachine(failureThreshold: 2, cooldown: .seconds(10))
        let start = ContinuousClock.now
        #expect(breaker.request(now: start) == .allow)
        #expect(breaker.recordFailure(now: start) == .none)
        #expect(breaker.recordFailure(now: start) == .opened)
        #expect(breaker.request(now: start + .seconds(5)) == .reject(until: start + .seconds(10)))
        #expect(breaker.request(now: start + .seconds(10)) == .allow)  // the probe
        if case .reject = breaker.request(now: start + .seconds(10)) {} else { Issue.record("a second probe was let through") }
        #expect(breaker.recordSuccess() == .closed)
        #expect(breaker.request(now: start + .seconds(11)) == .allow)
    }

    @Test func aFailedProbeReopensTheBreaker() {
        var breaker = CircuitBreakerStateMachine(failureThreshold: 1, cooldown: .seconds(10))
        let start = ContinuousClock.now
        #expect(breaker.recordFailure(now: start) == .opened)
        #expect(breaker.request(now: start + .seconds(10)) == .allow)
        #expect(breaker.recordFailure(now: start + .seconds(10)) == .opened)
        #expect(breaker.request(now: start + .seconds(15)) == .reject(until: start + .seconds(20)))
    }
}
