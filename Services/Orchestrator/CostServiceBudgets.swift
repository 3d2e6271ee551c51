import Budgets
import ConduitHTTP
import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import HTTPTypes
import Logging
import NIOConcurrencyHelpers

/// A tenant's budgets from the cost-service (`GET /internal/budgets`), kept for `refresh`: a new
/// or changed budget applies on every replica within that time. A copy past half of it still
/// answers while one fetch in the background renews it; an older one is renewed before
/// answering, concurrent requests of the tenant sharing the fetch. When the cost-service cannot be reached, the copy in hand
/// serves for up to `staleness`; past it (or with none) the request is refused with a 503,
/// unless `allowWhenUnavailable`. At most `maxTenants` copies are kept; the oldest go first.
final class CostServiceBudgets: BudgetDirectory {
    struct Configuration: Sendable {
        var refresh: Duration = .seconds(1)
        var staleness: Duration = .seconds(300)
        var maxTenants = 10_000
        var allowWhenUnavailable = false
    }

    private struct Copy {
        var budgets: [Budget]
        var fetched: ContinuousClock.Instant
    }

    private let client: ServiceClient
    private let configuration: Configuration
    private let logger: Logger
    private let copies = NIOLockedValueBox<[String: Copy]>([:])
    private let fetches = NIOLockedValueBox<[String: Task<[Budget], any Error>]>([:])

    init(client: ServiceClient, configuration: Configuration, logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    var cachedTenants: Int { copies.withLockedValue { $0.count } }

    func budgets(tenant: String, context: ConduitRequestContext) async throws -> [Budget] {
        let now = ContinuousClock.now
        let copy = copies.withLockedValue { $0[tenant] }
        if let copy, now - copy.fetched < configuration.refresh / 2 { return copy.budgets }
        if let copy, now - copy.fetched < configuration.refresh {
            // Half its time gone: this request uses it while one fetch renews it, so that under
            // steady traffic no request of the tenant waits on the cost-service.
            guard fetches.withLockedValue({ $0[tenant] == nil }) else { return copy.budgets }
            let headers = ServiceClient.propagatedHeaders(from: context)
            Task { [self] in
                if let budgets = try? await fetch(tenant: tenant, headers: headers) { store(budgets, tenant: tenant) }
            }
            return copy.budgets
        }
        do {
            let budgets = try await fetch(tenant: tenant, headers: ServiceClient.propagatedHeaders(from: context))
            store(budgets, tenant: tenant)
            return budgets
        } catch {
            if let copy, now - copy.fetched < configuration.staleness {
                logger.warning("budgets could not be refreshed; using the copy in hand", metadata: [LogKey.error: "\(error)"])
                return copy.budgets
            }
            if configuration.allowWhenUnavailable {
                logger.warning("budgets unknown and the cost-service unreachable; allowed (CONDUIT_BUDGET_UNAVAILABLE=allow)")
                return []
            }
            throw APIError.budgetsUnavailable("the cost-service is unreachable")
        }
    }

    /// One fetch per tenant at a time; the requests that arrive meanwhile wait for it.
    private func fetch(tenant: String, headers: [(name: String, value: String)]) async throws -> [Budget] {
        let client = self.client
        let task = fetches.withLockedValue { fetches in
            if let running = fetches[tenant] { return running }
            let task = Task { () throws -> [Budget] in
                let response = try await client.send(to: .costService, method: "GET", path: "/internal/budgets", headers: headers, timeout: .seconds(5))
                let bytes = try await response.body.collect(upTo: 16 << 20)
                guard response.status == 200 else { throw APIError.serviceUnavailable("cost-service answered \(response.status)") }
                return try EventCoding.decoder().decode(BudgetDefinitions.self, from: Data(bytes)).data
            }
            fetches[tenant] = task
            return task
        }
        // The first waiter to return clears the entry, unless a newer fetch has replaced it.
        defer { fetches.withLockedValue { if $0[tenant] == task { $0[tenant] = nil } } }
        return try await task.value
    }

    private func store(_ budgets: [Budget], tenant: String) {
        copies.withLockedValue { copies in
            if copies[tenant] == nil, copies.count >= configuration.maxTenants,
               let oldest = copies.min(by: { $0.value.fetched < $1.value.fetched })?.key {
                copies[oldest] = nil
            }
            copies[tenant] = Copy(budgets: budgets, fetched: .now)
        }
    }

    func buildCounters(_ budgets: [Budget], context: ConduitRequestContext) async throws {
        let body = try JSONEncoder().encode(["budget_ids": budgets.map(\.id)])
        let response = try await client.send(
            to: .costService, path: "/internal/budgets/counters", body: Array(body), headers: ServiceClient.propagatedHeaders(from: context), timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard response.status == 200 else { throw APIError.serviceUnavailable("cost-service answered \(response.status)") }
    }
}
