import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
@testable import Orchestrator
import Prometheus
import Providers
import SemanticCache
import TestSupport

extension OrchestratorDependencies {
    static func fakes(models: FakeModels = FakeModels(), usage: RecordedUsage = RecordedUsage(), sessions: InMemorySessionStore = InMemorySessionStore(),
                      answers: InMemoryAnswerIndex = InMemoryAnswerIndex(), services: FakeServices = FakeServices(),
                      budgets: FakeBudgets = FakeBudgets(), spend: MemorySpend = MemorySpend()) -> OrchestratorDependencies {
        OrchestratorDependencies(models: models, usage: usage, sessions: sessions, answers: answers, services: services, tokenizer: NoTokenizer(),
                                 budgets: budgets, spend: spend)
    }
}
