import ConduitProtocol
import Crypto
import Foundation
import HTTP
import Logging
import Prometheus

/// Alerts of budgets crossing their thresholds, from the ledger's spend: each budget, period
/// and threshold is recorded once in `cost.budget_alerts` before its `AlertEvent` goes to
/// `conduit.alerts`, so a replayed ledger or a second reconciler raises nothing new; one
/// recorded but not delivered (a crash between the two) is sent on the next pass. A budget
/// with a `webhook_url` is also told over HTTP, signed (see `BudgetWebhook`).
struct BudgetAlerts: Sendable {
    let store: any BudgetStore
    let publish: @Sendable (AlertEvent) async throws -> Void
    let webhook: BudgetWebhook?
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    /// Raises the thresholds `spentUSD` has reached in `window`.
    func check(_ budget: Budget, window: BudgetWindow, spentUSD: Double) async throws {
        guard budget.limitUSD > 0 else { return }
        for threshold in budget.alertThresholds where spentUSD >= threshold * budget.limitUSD {
            let alert = RecordedAlert(budgetID: budget.id, window: window.label, threshold: threshold, spentUSD: spentUSD)
            guard try await store.recordAlert(budget, window: window, threshold: threshold, spentUSD: spentUSD) else { continue }
            try await deliver(alert, budget: budget)
        }
    }

    /// Sends the alerts a crash left undelivered.
    func redeliver(budgets: (String) async throws -> Budget?) async throws {
        for alert in try await store.undeliveredAlerts(limit: 100) {
            guard let budget = try await budgets(alert.budgetID) else {
                // The budget was deleted since: nobody is left to tell.
                try await store.markDelivered(alert)
                continue
            }
            try await deliver(alert, budget: budget)
        }
    }

    func deliver(_ alert: RecordedAlert, budget: Budget) async throws {
        var event = AlertEvent(
            budgetID: budget.id, tenant: budget.tenant, kind: alert.threshold >= 1 ? "exhausted" : "threshold",
            spentFraction: alert.spentUSD / budget.limitUSD, spentUSD: alert.spentUSD, limitUSD: budget.limitUSD,
            period: budget.period.rawValue, timestamp: Date())
        event.threshold = alert.threshold
        event.window = alert.window
        try await publish(event)
        try await store.markDelivered(alert)
        registry.makeCounter(name: "cost_budget_alerts_total", labels: [("kind", event.kind)], help: "Budget alerts raised on conduit.alerts.").increment()
        logger.info("budget alert", metadata: ["budget": "\(budget.id)", "threshold": "\(alert.threshold)", "window": "\(alert.window)"])
        if let url = budget.webhookURL, let webhook {
            await webhook.send(event, to: url)
        }
    }
}

/// A budget's alert POSTed to its `webhook_url` as the `AlertEvent` JSON, with
/// `X-Conduit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under
/// `CONDUIT_BUDGET_WEBHOOK_SECRET`, so the receiver can check who sent it and when. One attempt
/// with a 5 s limit; a failure is logged and counted (`cost_budget_webhook_failures_total`),
/// the event on Kafka stands.
struct BudgetWebhook: Sendable {
    let http: HTTPClient
    let secret: String
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    static func signature(body: [UInt8], secret: String, at time: Date) -> String {
        let stamp = String(Int(time.timeIntervalSince1970))
        let mac = HMAC<SHA256>.authenticationCode(for: Array((stamp + ".").utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return "t=\(stamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    func send(_ event: AlertEvent, to url: String) async {
        do {
            let body = try EventCoding.encoder().encode(event)
            let response = try await http.execute(HTTPRequest(
                method: "POST", url: url,
                headers: [("Content-Type", "application/json"), ("X-Conduit-Signature", Self.signature(body: Array(body), secret: secret, at: Date()))],
                body: Array(body), timeout: .seconds(5)))
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard (200..<300).contains(response.status) else { throw HTTPClientError(.invalidRequest, reason: "status \(response.status)") }
        } catch {
            registry.makeCounter(name: "cost_budget_webhook_failures_total", help: "Budget alert webhooks that failed.").increment()
            // The URL may carry a token: only the budget is named.
            logger.warning("budget webhook failed", metadata: ["budget": "\(event.budgetID)"])
        }
    }
}
