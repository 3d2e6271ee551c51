import ConduitProtocol
@testable import Gateway
import TestSupport

/// Audit events written down instead of published.
final class RecordingAudit: AuditRecorder {
    private let events = Locked<[AuditEvent]>([])
    var recorded: [AuditEvent] { events.withLock { $0 } }

    func record(_ event: AuditEvent) {
        events.withLock { $0.append(event) }
    }
}
