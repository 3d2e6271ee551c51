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

/// Usage events kept to be read back.
final class RecordedUsage: UsageRecorder {
    private let events = Locked<[UsageEvent]>([])
    var recorded: [UsageEvent] { events.withLock { $0 } }
    func record(_ event: UsageEvent) { events.withLock { $0.append(event) } }
}
