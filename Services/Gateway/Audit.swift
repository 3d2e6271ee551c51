import ConduitKafka
import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import Logging
import Prometheus
import Synchronization

/// Where the gateway sends what it audits: `KafkaAuditPublisher` (`conduit.audit`); an
/// application test writes it down.
protocol AuditRecorder: Sendable {
    /// Never waits for the broker.
    func record(_ event: AuditEvent)
}

/// Publishes audit events to `conduit.audit` (key: request id) without holding the response:
/// at most `limit` sends in flight; past that an event is dropped and counted in
/// `gateway_audit_events_dropped_total` (the broker being away that long is an outage the
/// metric shows). `gateway_audit_events_published_total` counts the rest.
final class KafkaAuditPublisher: AuditRecorder {
    let producer: KafkaProducer
    let topic: String
    let limit: Int
    private let inFlight = Mutex(0)
    private let published: Counter
    private let dropped: Counter
    private let logger: Logger

    init(producer: KafkaProducer, topic: String = KafkaTopic.audit, limit: Int = 10_000, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.producer = producer
        self.topic = topic
        self.limit = limit
        self.logger = logger
        published = registry.makeCounter(descriptor: .init(namespace: "gateway", subsystem: "audit", metricName: "events_published", unitName: "total",
                                                           helpText: "Audit events the broker acknowledged."))
        dropped = registry.makeCounter(descriptor: .init(namespace: "gateway", subsystem: "audit", metricName: "events_dropped", unitName: "total",
                                                         helpText: "Audit events dropped: too many sends in flight, or the send failed."))
    }

    func record(_ event: AuditEvent) {
        let admitted = inFlight.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard admitted, let value = try? EventCoding.encoder().encode(event) else {
            dropped.increment()
            return
        }
        Task { [self] in
            defer { inFlight.withLock { $0 -= 1 } }
            do {
                _ = try await producer.send(topic: topic, key: event.requestID, value: Array(value))
                published.increment()
            } catch {
                dropped.increment()
                logger.warning("an audit event could not be published", metadata: [LogKey.error: "\(error)", "action": "\(event.action)"])
            }
        }
    }
}

/// Audits, behind authentication, every change an admin makes (keys, tenants, budgets), every
/// change to prompts (versions, labels, deletions, experiments) and every permission refusal. (Authentication failures are audited where they happen.)
struct AuditMiddleware: RouterMiddleware {
    typealias Context = ConduitRequestContext
    let audit: any AuditRecorder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let action = Self.action(request.method, path: request.uri.path)
        do {
            let response = try await next(request, context)
            if let action { record(action, request, context, status: response.status.code) }
            return response
        } catch let error as APIError {
            let status = error.status.code
            if status == 403 {
                record(action ?? "permission.denied", request, context, status: status, outcome: "denied")
            } else if let action {
                record(action, request, context, status: status)
            }
            throw error
        } catch {
            if let action { record(action, request, context, status: 500) }
            throw error
        }
    }

    private func record(_ action: String, _ request: Request, _ context: Context, status: Int, outcome: String? = nil) {
        audit.record(AuditEvent(
            requestID: context.requestID, tenant: context.identity?.tenant, keyID: context.identity?.keyID, action: action,
            resource: "\(request.method.rawValue) \(request.uri.path)",
            outcome: outcome ?? (status == 403 ? "denied" : (200..<300).contains(status) ? "allowed" : "failed"), status: status,
            timestamp: Date(), sourceAddress: context.sourceAddress))
    }

    /// The admin action a request is, if it is one.
    static func action(_ method: HTTPRequest.Method, path: String) -> String? {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 2, parts[0] == "v1", method != .get, method != .head else { return nil }
        // Prompt names may hold folders: their changes are read from the path's end.
        switch (parts[1], method, parts.count, parts.last) {
        case ("prompts", .post, 2, _): return "prompt.version"
        case ("prompts", .post, _, "labels"): return "prompt.label"
        case ("prompts", .delete, 3..., _): return "prompt.delete"
        case ("prompts", _, _, _): return nil
        case ("experiments", .post, 2, _): return "experiment.create"
        case ("experiments", .post, 4, "conclude"): return "experiment.conclude"
        // A new flow version is an admin action; runs are traffic, not administration.
        case ("flows", .post, 2, _): return "flow.version"
        case ("flows", _, _, _): return nil
        default: break
        }
        let verb: String
        switch (parts.count, method, parts.last) {
        case (_, .post, "rotate"): verb = "rotate"
        case (2, .post, _): verb = "create"
        case (3, .patch, _): verb = "update"
        case (3, .delete, _): verb = parts[1] == "keys" ? "revoke" : "delete"
        default: return nil
        }
        switch parts[1] {
        case "keys": return "key." + verb
        case "tenants": return "tenant." + verb
        case "budgets": return "budget." + verb
        case "teams": return "team." + verb
        case "users": return "user." + verb
        default: return nil
        }
    }
}
