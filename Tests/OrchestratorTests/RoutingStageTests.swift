import Budgets
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import HummingbirdTesting
@testable import Orchestrator
import Testing
import TestSupport

/// `model: "auto"` in the chat path, over the fake catalog's router: `quick` (quality 0.6, fast,
/// cheap) and `deep` (0.9, 800 ms, dear); simple and medium requests need 0.5, complex 0.85.
@Suite(.timeLimit(.minutes(1)))
struct RoutingStageTests {
    typealias Harness = ChatAPITests.Harness

    static let complex = "Design a multi-region architecture for a payment service: replication, consistency guarantees, failover, and a test plan. Analyze the trade-offs."

    static func body(_ question: String, stream: Bool = false, conduit: String? = nil) -> String {
        let text = String(decoding: try! JSONEncoder().encode(question), as: UTF8.self)
        return #"{"model":"auto","stream":\#(stream),"messages":[{"role":"user","content":\#(text)}]\#(conduit.map { ",\"conduit\":\($0)" } ?? "")}"#
    }

    static func route(_ response: TestResponse) -> JSONValue? { ChatAPITests.json(response)?["conduit"]?["routing"] }

    @Test func aSimpleQuestionGoesToTheCheapModelAndAHardOneToTheStrongOne() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            let simple = try await ChatAPITests.chat(client, Self.body("What is the capital of France?"))
            #expect(simple.status == .ok)
            #expect(simple.headers[HTTPField.Name("X-Conduit-Route")!] == "quick; reason=complexity; complexity=simple")
            #expect(Self.route(simple)?["model"] == "quick")
            #expect(Self.route(simple)?["router"] == "auto")
            #expect(Self.route(simple)?["reason"] == "complexity")
            #expect(Self.route(simple)?["candidates"]?[1]?["status"] == "eligible")
            #expect(ChatAPITests.json(simple)?["model"] == "quick")

            let hard = try await ChatAPITests.chat(client, Self.body(Self.complex))
            #expect(hard.headers[HTTPField.Name("X-Conduit-Route")!] == "deep; reason=complexity; complexity=complex")
            #expect(Self.route(hard)?["candidates"]?[0]?["status"] == "below_quality")
            #expect(Self.route(hard)?["min_quality"] == 0.85)
        }
        #expect(harness.models.requests.map(\.model) == ["quick", "deep"])
        // The ledger keeps what the caller asked for and what served it.
        #expect(harness.usage.recorded.map(\.model) == ["auto", "auto"])
        #expect(harness.usage.recorded.map(\.servedModel) == ["quick", "deep"])
        #expect(harness.usage.recorded.map(\.deployment) == ["quick-local", "deep-local"])
    }

    @Test func aKeyLimitedToSomeModelsIsRoutedAmongThoseOnly() async throws {
        let harness = Harness()
        try await harness.app().test(.router) { client in
            // The hard question would go to `deep`; this key may use `quick` only.
            var headers = TestIdentity.fields(tenant: "acme", keyID: "key-1", models: ["auto", "quick"])
            headers[.contentType] = "application/json"
            let limited = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: Self.body(Self.complex)))
            #expect(limited.status == .ok)
            #expect(Self.route(limited)?["model"] == "quick")
            var none = TestIdentity.fields(tenant: "acme", keyID: "key-1", models: ["auto"])
            none[.contentType] = "application/json"
            let refused = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: none, body: ByteBuffer(string: Self.body("Hi?")))
            #expect(refused.status == .forbidden)
            #expect(ChatAPITests.json(refused)?["error"]?["code"] == "model_not_allowed")
        }
        #expect(harness.models.requests.map(\.model) == ["quick"])
    }

    @Test func aStreamCarriesTheRouteOnItsLastChunkAndInItsHeader() async throws {
        try await Harness().app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.body(Self.complex, stream: true))
            #expect(response.headers[HTTPField.Name("X-Conduit-Route")!] == "deep; reason=complexity; complexity=complex")
            let chunks = ChatAPITests.dataLines(response).dropLast().compactMap { JSONValue.parse(Array($0.utf8)) }
            #expect(chunks.last?["conduit"]?["routing"]?["model"] == "deep")
            #expect(chunks.first?["model"] == "deep")
        }
    }

    @Test func anOpenCircuitOrALatencyLimitSendsTheRequestElsewhereAndSaysWhy() async throws {
        let harness = Harness()
        harness.models.openCircuits.withLock { $0 = ["deep"] }
        try await harness.app().test(.router) { client in
            let sick = try await ChatAPITests.chat(client, Self.body(Self.complex))
            #expect(sick.headers[HTTPField.Name("X-Conduit-Route")!] == "quick; reason=health; complexity=complex")
            #expect(Self.route(sick)?["candidates"]?[1]?["status"] == "circuit_open")
            harness.models.openCircuits.withLock { $0 = [] }
            let hurried = try await ChatAPITests.chat(client, Self.body(Self.complex, conduit: #"{"routing":{"max_latency_ms":200}}"#))
            #expect(hurried.headers[HTTPField.Name("X-Conduit-Route")!] == "quick; reason=latency; complexity=complex")
            #expect(Self.route(hurried)?["candidates"]?[1]?["status"] == "over_latency")
            let invalid = try await ChatAPITests.chat(client, Self.body("hi", conduit: #"{"routing":{"max_latency_ms":0}}"#))
            #expect(invalid.status == .badRequest)
            #expect(ChatAPITests.json(invalid)?["error"]?["param"] == "conduit.routing.max_latency_ms")
        }
    }

    @Test func nearTheBudgetsLimitAHardRequestStepsDownATier() async throws {
        let month = Budget(id: "monthly", tenant: "acme", name: "monthly", scope: .tenant, period: .month, limitUSD: 1)
        let harness = BudgetStageTests.harness([month])
        harness.spend.build(BudgetStageTests.counter(month), spent: 0.9)
        try await harness.app().test(.router) { client in
            let response = try await ChatAPITests.chat(client, Self.body(Self.complex))
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("X-Conduit-Route")!] == "quick; reason=budget; complexity=complex")
            #expect(Self.route(response)?["budget_used"] == 0.9)
        }
        // The hold was priced at the chosen model's prices.
        let hold = try #require(harness.spend.reservations.withLock { $0 }.first)
        #expect(hold.amount < 0.01)
    }

    @Test func routersAreListedAndTheirChoicesCounted() async throws {
        try await Harness().app().test(.router) { client in
            let auto = try await client.execute(uri: "/v1/models/auto", method: .get, headers: TestIdentity.fields(tenant: "acme"))
            #expect(ChatAPITests.json(auto)?["owned_by"] == "conduit")
            _ = try await ChatAPITests.chat(client, Self.body("hi"))
            _ = try await ChatAPITests.chat(client, Self.body("thanks"))
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(String(buffer: metrics.body).contains(#"conduit_router_choices_total{selected_model="quick",reason="complexity"} 2"#))
        }
    }
}
