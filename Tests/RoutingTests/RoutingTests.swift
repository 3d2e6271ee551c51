import ConduitProtocol
import Foundation
import Providers
@testable import Routing
import Testing

@Suite struct ComplexityClassifierTests {
    struct Labelled: Decodable {
        var prompt: String
        var label: String
        var split: String
    }

    static let labelled: [Labelled] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try! String(contentsOf: root.appendingPathComponent("deploy/routing/labelled-prompts.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").map { try! JSONDecoder().decode(Labelled.self, from: Data($0.utf8)) }
    }()

    @Test func theShippedSetHasAtLeast150PromptsOfEachKindInBothHalves() {
        #expect(Self.labelled.count >= 150)
        for label in Complexity.allCases.map(\.rawValue) {
            for split in ["dev", "test"] {
                #expect(Self.labelled.filter { $0.label == label && $0.split == split }.count >= 20, "\(label) \(split)")
            }
        }
    }

    @Test func theHeldOutHalfIsClassifiedAtLeastNineTimesInTen() {
        let classifier = ComplexityClassifier()
        let test = Self.labelled.filter { $0.split == "test" }
        let right = test.filter { classifier.classify($0.prompt).complexity.rawValue == $0.label }.count
        #expect(Double(right) / Double(test.count) >= 0.9, "\(right) of \(test.count)")
        // Never two classes apart: a complex request sent to the simple tier is the costly mistake.
        let farOff = test.filter {
            let verdict = classifier.classify($0.prompt).complexity
            return ($0.label == "complex" && verdict == .simple) || ($0.label == "simple" && verdict == .complex)
        }
        #expect(farOff.isEmpty, "\(farOff.map(\.prompt))")
    }

    @Test func lengthStructureAndWordsMakeTheScore() {
        let classifier = ComplexityClassifier()
        #expect(classifier.classify("hi").complexity == .simple)
        #expect(classifier.classify("What is the capital of Peru?").complexity == .simple)
        #expect(classifier.classify("Explain how DNS resolution works, and why caching matters.").complexity == .medium)
        let design = "Design a sharded key-value store: replication, consistency guarantees, failure detection and a migration plan. Analyze the trade-offs."
        #expect(classifier.classify(design).complexity == .complex)
        let short = classifier.classify("Why is this slow?")
        let withCode = classifier.classify("Why is this slow?\n```\nfor i in range(n): items.insert(0, i)\n```")
        #expect(withCode.score > short.score + 1.9)
    }
}

@Suite struct ModelSelectorTests {
    static func deployment(_ id: String, quality: Double, latency: Int, input: Double, output: Double, images: Bool = true) -> Deployment {
        Deployment(id: id, provider: .openAI, upstreamModel: id, baseURL: "http://127.0.0.1:9/v1", prices: .init(input: input, output: output),
                   quality: quality, latencyMilliseconds: latency, acceptsImages: images)
    }

    static let small = deployment("small", quality: 0.6, latency: 200, input: 0.1, output: 0.4)
    static let middle = deployment("middle", quality: 0.8, latency: 400, input: 0.8, output: 4)
    static let large = deployment("large", quality: 0.9, latency: 900, input: 2.5, output: 10)
    static let router = RouterModel(name: "auto", candidates: ["small", "middle", "large"])

    static func candidates(open: Set<String> = [], missing: Set<String> = []) -> [ModelSelector.Candidate] {
        [small, middle, large].map { ModelSelector.Candidate(model: $0.id, deployment: missing.contains($0.id) ? nil : $0, healthy: !open.contains($0.id)) }
    }

    static func request(_ complexity: Complexity, budgetUsed: Double? = nil, maxLatency: Int? = nil, images: Bool = false) -> ModelSelector.Request {
        .init(complexity: .init(complexity: complexity, score: 1), promptTokens: 100, maxLatencyMilliseconds: maxLatency, hasImages: images, budgetUsed: budgetUsed)
    }

    let selector = ModelSelector(router: router)

    @Test func eachComplexityGetsTheCheapestModelGoodEnoughForIt() throws {
        for (complexity, model) in [(Complexity.simple, "small"), (.medium, "middle"), (.complex, "large")] {
            let choice = try #require(selector.choose(Self.request(complexity), among: Self.candidates()))
            #expect(choice.model == model)
            #expect(choice.reason == .complexity)
            #expect(choice.info.candidates.filter { $0.status == "chosen" }.map(\.model) == [model])
        }
        let info = try #require(selector.choose(Self.request(.medium), among: Self.candidates())).info
        #expect(info.candidates.first { $0.model == "small" }?.status == "below_quality")
        #expect(info.candidates.first { $0.model == "large" }?.status == "eligible")
        #expect(info.minQuality == 0.75)
    }

    @Test func aBudgetNearItsLimitStepsDownOneTier() throws {
        let near = try #require(selector.choose(Self.request(.complex, budgetUsed: 0.85), among: Self.candidates()))
        #expect(near.model == "middle")
        #expect(near.reason == .budget)
        #expect(near.info.budgetUsed == 0.85)
        let below = try #require(selector.choose(Self.request(.complex, budgetUsed: 0.5), among: Self.candidates()))
        #expect(below.model == "large")
        #expect(below.reason == .complexity)
    }

    @Test func anOpenCircuitIsSkipped() throws {
        let choice = try #require(selector.choose(Self.request(.medium), among: Self.candidates(open: ["middle"])))
        #expect(choice.model == "large")
        #expect(choice.reason == .health)
        #expect(choice.info.candidates.first { $0.model == "middle" }?.status == "circuit_open")
        // Every circuit open: the best of them, and the model router's retries decide.
        let all = try #require(selector.choose(Self.request(.medium), among: Self.candidates(open: ["small", "middle", "large"])))
        #expect(all.reason == .health)
        #expect(all.model == "middle")
    }

    @Test func theLatencyLimitLeavesOutSlowModels() throws {
        let choice = try #require(selector.choose(Self.request(.complex, maxLatency: 500), among: Self.candidates()))
        #expect(choice.model == "middle")
        #expect(choice.reason == .latency)
        #expect(choice.info.candidates.first { $0.model == "large" }?.status == "over_latency")
        let none = try #require(selector.choose(Self.request(.simple, maxLatency: 50), among: Self.candidates()))
        #expect(none.model == "small")
        #expect(none.reason == .latency)
    }

    @Test func withNothingGoodEnoughTheBestAvailableIsChosen() throws {
        let choice = try #require(selector.choose(Self.request(.complex), among: Self.candidates(missing: ["large"])))
        #expect(choice.model == "middle")
        #expect(choice.reason == .bestAvailable)
        #expect(choice.info.candidates.first { $0.model == "large" }?.status == "unconfigured")
        #expect(selector.choose(Self.request(.simple), among: Self.candidates(missing: ["small", "middle", "large"])) == nil)
    }

    @Test func imagesGoOnlyToModelsThatReadThem() throws {
        let blind = Self.deployment("small", quality: 0.6, latency: 200, input: 0.1, output: 0.4, images: false)
        let candidates = [ModelSelector.Candidate(model: "small", deployment: blind, healthy: true)] + Self.candidates().dropFirst()
        let choice = try #require(selector.choose(Self.request(.simple, images: true), among: candidates))
        #expect(choice.model == "middle")
        #expect(choice.info.candidates.first { $0.model == "small" }?.status == "no_images")
    }

    @Test func theCheaperModelForThisRequestWins() throws {
        // Two good-enough models: one cheap to read, one cheap to write. A long prompt with a short
        // answer goes to the first.
        let reader = Self.deployment("reader", quality: 0.8, latency: 300, input: 0.1, output: 8)
        let writer = Self.deployment("writer", quality: 0.8, latency: 300, input: 3, output: 1)
        let both = RouterModel(name: "auto", candidates: ["reader", "writer"])
        let candidates = [reader, writer].map { ModelSelector.Candidate(model: $0.id, deployment: $0, healthy: true) }
        let long = ModelSelector.Request(complexity: .init(complexity: .medium, score: 3), promptTokens: 20_000, completionLimit: 50)
        #expect(ModelSelector(router: both).choose(long, among: candidates)?.model == "reader")
        let short = ModelSelector.Request(complexity: .init(complexity: .medium, score: 3), promptTokens: 10)
        #expect(ModelSelector(router: both).choose(short, among: candidates)?.model == "writer")
    }
}

@Suite struct RouterCatalogTests {
    static let models = """
        models:
          - name: a
            deployments: [{id: a1, provider: openai, model: a, base_url: "http://127.0.0.1:9/v1", quality: 0.6}]
          - name: b
            deployments: [{id: b1, provider: openai, model: b, base_url: "http://127.0.0.1:9/v1", api_key_env: ROUTER_TEST_KEY, quality: 0.9}]
        """

    @Test func routersAreReadFromTheCatalog() throws {
        let catalog = try ModelCatalog(yaml: Self.models + """

            routers:
              - name: auto
                models: [a, b]
                min_quality: {complex: 0.95}
                step_down_at: 0.9
            """)
        let router = try #require(catalog.router(named: "auto"))
        #expect(router.candidates == ["a", "b"])
        #expect(router.quality(for: .complex) == 0.95)
        #expect(router.quality(for: .medium) == 0.75)
        #expect(router.stepDownAt == 0.9)
        #expect(catalog.model(named: "auto") == nil)
        #expect(catalog.availableRouters(keys: APIKeys(environment: [:])).map(\.name) == ["auto"])
    }

    @Test func aRouterMustNameKnownModelsAndAFreeName() {
        #expect(throws: CatalogError.self) { try ModelCatalog(yaml: Self.models + "\nrouters: [{name: auto, models: [a, nope]}]") }
        #expect(throws: CatalogError.self) { try ModelCatalog(yaml: Self.models + "\nrouters: [{name: a, models: [b]}]") }
        #expect(throws: CatalogError.self) { try ModelCatalog(yaml: Self.models + "\nrouters: [{name: auto, models: [a], min_quality: {hard: 0.5}}]") }
        #expect(throws: CatalogError.self) { try ModelCatalog(yaml: Self.models + "\nrouters: [{name: auto, models: [a], step_down_at: 2}]") }
    }

    @Test func aRouterWhoseModelsAreAllUnconfiguredIsNotOffered() throws {
        let catalog = try ModelCatalog(yaml: Self.models + "\nrouters: [{name: premium, models: [b]}]")
        #expect(catalog.availableRouters(keys: APIKeys(environment: [:])).isEmpty)
        #expect(catalog.availableRouters(keys: APIKeys(environment: ["ROUTER_TEST_KEY": "k"])).map(\.name) == ["premium"])
    }
}
