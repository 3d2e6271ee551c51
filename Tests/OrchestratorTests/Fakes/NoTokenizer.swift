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

/// Never asked: the fake catalog's deployment has no tokenizer.
struct NoTokenizer: Tokenizer {
    func count(_ text: String, deployment: Deployment) async -> Int? { nil }
}
