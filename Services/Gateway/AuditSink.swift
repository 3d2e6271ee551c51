import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import Logging
import Prometheus
import ServiceLifecycle

/// Consumes `conduit.audit` into `audit.events`, each event appended once to its tenant's chain
/// (a replay changes nothing), its offset marked only after the row is durable. An event that
/// cannot be written as it is goes to `conduit.audit.dlq` with the reason.
struct AuditSink: Service {
    let consumer: KafkaConsumer
    let dlq: DeadLetterQueue
    let log: AuditLog
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    func run() async throws {
        try await consumer.forEachMessageConcurrently(limit: 4) { message in
            try await consumer.settle(message, deadLetters: dlq, service: "gateway", logger: logger) {
                let event = try Self.decode(message.value)
                let new = try await retryUntilCancelled(logger: logger, "writing an audit event") { try await log.append(event) }
                registry.makeCounter(name: "gateway_audit_events_written_total", labels: [("outcome", new ? "written" : "replayed")],
                                     help: "Audit events consumed into audit.events, by whether they were new or replays.").increment()
            }
        }
    }

    static func decode(_ value: [UInt8]) throws -> AuditEvent {
        let event = try MessageRejection.decoding(AuditEvent.self, from: value, what: "audit event", decoder: EventCoding.decoder())
        guard event.schemaVersion == AuditEvent.currentSchemaVersion else { throw MessageRejection(reason: "unsupported schema_version \(event.schemaVersion)") }
        guard !event.requestID.isEmpty, !event.action.isEmpty, !event.outcome.isEmpty else {
            throw MessageRejection(reason: "'request_id', 'action' and 'outcome' must not be empty")
        }
        let texts = [event.requestID, event.action, event.outcome] + [event.tenant, event.keyID, event.resource, event.sourceAddress].compactMap { $0 }
        if texts.contains(where: { $0.utf8.contains(0) || $0.utf8.count > 2048 }) {
            throw MessageRejection(reason: "text fields must be at most 2048 bytes, without NUL")
        }
        if let status = event.status, !(100...599).contains(status) { throw MessageRejection(reason: "'status' must be an HTTP status") }
        return event
    }
}

/// `GET /v1/audit?tenant=&action=&from=&to=&cursor=&limit=` (newest first; `next_cursor` pages
/// on) and `GET /v1/audit/verify?tenant=` (the chain checked from its first row). Tenant admins
/// and viewers read their own tenant; platform admins any (`tenant`) or all (no `tenant`).
struct AuditController: Sendable {
    let log: AuditLog

    /// A row as the event it records (its own field names), with its place and hash in the chain.
    struct EntryView: Encodable {
        var row: AuditLog.Row

        enum Extra: String, CodingKey {
            case object, seq, hash
        }

        func encode(to encoder: any Encoder) throws {
            try row.event.encode(to: encoder)
            var extra = encoder.container(keyedBy: Extra.self)
            try extra.encode("audit_event", forKey: .object)
            try extra.encode(row.seq, forKey: .seq)
            try extra.encodeIfPresent(row.hash.map { $0.map { String(format: "%02x", $0) }.joined() }, forKey: .hash)
        }
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.get("/v1/audit") { request, context in
            let query = request.uri.queryParameters
            let tenant = try Self.tenant(query["tenant"].map(String.init), context: context, allowAll: true)
            func time(_ name: String) throws -> Date? {
                guard let text = query[Substring(name)].map(String.init) else { return nil }
                guard let date = ISO8601DateFormatter().date(from: text) else { throw APIError.invalidRequest("'\(name)' must be an ISO 8601 time.", param: name) }
                return date
            }
            var before: Int64?
            if let cursor = query["cursor"].map(String.init) {
                guard let value = Int64(cursor) else { throw APIError.invalidRequest("'cursor' is the next_cursor of an earlier page.", param: "cursor") }
                before = value
            }
            let limit = min(max(Int(query["limit"].map(String.init) ?? "") ?? 100, 1), 1000)
            let rows = try await log.rows(tenant: tenant, action: query["action"].map(String.init), from: try time("from"), to: try time("to"),
                                          before: before, limit: limit + 1)
            let page = rows.prefix(limit).map(EntryView.init)
            return try KeysController.json(KeysController.List(data: Array(page), nextCursor: rows.count > limit ? String(page.last!.row.seq) : nil))
        }
        router.get("/v1/audit/verify") { request, context in
            let tenant = try Self.tenant(request.uri.queryParameters["tenant"].map(String.init), context: context, allowAll: false) ?? ""
            let result = try await log.verify(tenant: tenant)
            return try KeysController.json(Verified(tenant: tenant, rows: result.rows, valid: result.firstInvalid == nil, firstInvalidSeq: result.firstInvalid))
        }
    }

    struct Verified: Encodable {
        var tenant: String
        var rows: Int
        var valid: Bool
        var firstInvalidSeq: Int64?

        enum CodingKeys: String, CodingKey {
            case tenant, rows, valid
            case firstInvalidSeq = "first_invalid_seq"
        }
    }

    /// The tenant the caller may read: their own, or for a platform admin the one named (or all).
    static func tenant(_ named: String?, context: ConduitRequestContext, allowAll: Bool) throws -> String? {
        let caller = try context.require(.readAudit, "This key's role may not read the audit trail.")
        if caller.can(.manageTenants) { return named ?? (allowAll ? nil : caller.tenant) }
        guard named == nil || named == caller.tenant else {
            throw APIError(status: .forbidden, type: .permission, message: "A tenant's audit trail is for its own admins.", param: "tenant", code: "insufficient_role")
        }
        return caller.tenant
    }
}
