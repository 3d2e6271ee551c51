import Budgets
import ConduitKit
import ConduitProtocol
import Foundation
import Hummingbird

/// `/v1/budgets`: the caller's tenant's budgets with what they have spent and reserved in the
/// current period; admins create, change and delete them. `/internal/budgets` gives the
/// orchestrator the definitions and builds counters Redis lost.
struct BudgetController: Sendable {
    let accounts: BudgetAccounts
    /// Budgets one tenant may have.
    var maxPerTenant = 1000
    /// The zone of a budget that names none.
    var defaultTimeZone = "UTC"

    var store: any BudgetStore { accounts.store }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/budgets") { request, context in try await create(request, context) }
        router.get("/v1/budgets") { _, context in
            let budgets = try await store.budgets(tenant: try context.callerTenant())
            var views: [BudgetView] = []
            for budget in budgets { views.append(try await view(budget)) }
            return try jsonResponse(BudgetList(data: views))
        }
        router.get("/v1/budgets/:id") { _, context in try jsonResponse(try await view(try find(context), forecast: true)) }
        router.patch("/v1/budgets/:id") { request, context in try await update(request, context) }
        router.delete("/v1/budgets/:id") { _, context in
            try requireAdmin(context)
            let budget = try await find(context)
            _ = try await store.delete(budget.id, tenant: budget.tenant)
            return try jsonResponse(Deleted(id: budget.id))
        }
        router.get("/internal/budgets") { _, context in
            try jsonResponse(BudgetDefinitions(data: try await store.budgets(tenant: try context.callerTenant())), encoder: EventCoding.encoder())
        }
        router.post("/internal/budgets/counters") { request, context in
            let ask = try await request.decodeJSON(BuildRequest.self, context: context)
            let tenant = try context.callerTenant()
            var built = 0
            for id in ask.budgetIDs.prefix(maxPerTenant) {
                guard let budget = try await store.budget(id, tenant: tenant) else { continue }
                try await accounts.build(budget)
                built += 1
            }
            return try jsonResponse(["built": built])
        }
    }

    func create(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        try requireAdmin(context)
        let ask = try await request.decodeJSON(BudgetRequest.self, context: context)
        guard let scope = ask.scope else { throw APIError.invalidRequest("'scope' is required.", param: "scope") }
        guard let period = ask.period else { throw APIError.invalidRequest("'period' is required: day, week, month or total.", param: "period") }
        guard let limit = ask.limitUSD else { throw APIError.invalidRequest("'limit_usd' is required.", param: "limit_usd") }
        let zone = ask.timeZone ?? defaultTimeZone
        guard TimeZone(identifier: zone) != nil else {
            throw APIError.invalidRequest("'time_zone' must be an IANA time zone such as Europe/Paris.", param: "time_zone")
        }
        if let model = ask.model, model.isEmpty || model.utf8.count > 200 {
            throw APIError.invalidRequest("'model' is 1 to 200 bytes.", param: "model")
        }
        let budget = Budget(
            id: "bud_" + UUIDv7.make().replacingOccurrences(of: "-", with: ""), tenant: try context.callerTenant(),
            name: try Self.validName(ask.name), scope: scope, model: ask.model, period: period, timeZone: zone,
            limitUSD: try Self.validLimit(limit), alertThresholds: try Self.validThresholds(ask.alertThresholds ?? Budget.defaultThresholds),
            webhookURL: try Self.validWebhook(ask.webhookURL), createdAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
        do {
            try await store.create(budget, limit: maxPerTenant)
        } catch BudgetStoreError.tooMany {
            throw APIError.invalidRequest("A tenant has at most \(maxPerTenant) budgets; delete one first.", code: "too_many_budgets")
        }
        return try jsonResponse(try await view(budget), status: .created)
    }

    func update(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        try requireAdmin(context)
        var budget = try await find(context)
        let ask = try await request.decodeJSON(BudgetRequest.self, context: context)
        for (value, field) in [(ask.scope != nil, "scope"), (ask.period != nil, "period"), (ask.model != nil, "model"), (ask.timeZone != nil, "time_zone")]
        where value {
            throw APIError.invalidRequest("A budget's '\(field)' cannot change (its spend would mean something else); create a new budget.", param: field)
        }
        if let name = ask.name { budget.name = try Self.validName(name) }
        if let limit = ask.limitUSD { budget.limitUSD = try Self.validLimit(limit) }
        if let thresholds = ask.alertThresholds { budget.alertThresholds = try Self.validThresholds(thresholds) }
        if let webhook = ask.webhookURL { budget.webhookURL = webhook.isEmpty ? nil : try Self.validWebhook(webhook) }
        guard try await store.update(budget) else { throw APIError.notFound("No budget '\(budget.id)'.") }
        return try jsonResponse(try await view(budget))
    }

    func find(_ context: ConduitRequestContext) async throws -> Budget {
        let id = try context.pathParameter("id")
        guard let budget = try await store.budget(id, tenant: try context.callerTenant()) else { throw APIError.notFound("No budget '\(id)'.") }
        return budget
    }

    func view(_ budget: Budget, forecast: Bool = false) async throws -> BudgetView {
        let status = try await accounts.status(of: budget)
        var view = BudgetView(budget: budget, status: status)
        if forecast {
            view.forecast = try await BudgetForecaster(store: store).forecast(budget, status: status, now: accounts.now())
        }
        return view
    }

    func requireAdmin(_ context: ConduitRequestContext) throws {
        try context.require(.manageBudgets, "Only a tenant admin changes budgets.")
    }

    static func validName(_ name: String?) throws -> String? {
        guard let name else { return nil }
        guard name.utf8.count <= 200 else { throw APIError.invalidRequest("'name' is at most 200 bytes.", param: "name") }
        return name.isEmpty ? nil : name
    }

    static func validLimit(_ limit: Double) throws -> Double {
        guard limit.isFinite, limit >= 0, limit <= 1_000_000 else {
            throw APIError.invalidRequest("'limit_usd' is an amount from 0 to 1000000.", param: "limit_usd")
        }
        return limit
    }

    static func validThresholds(_ thresholds: [Double]) throws -> [Double] {
        guard thresholds.count <= 10, thresholds.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 10 }) else {
            throw APIError.invalidRequest("'alert_thresholds' holds at most 10 fractions of the limit, each above 0 and at most 10.", param: "alert_thresholds")
        }
        return Array(Set(thresholds)).sorted()
    }

    static func validWebhook(_ url: String?) throws -> String? {
        guard let url else { return nil }
        guard url.utf8.count <= 2048, let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
            throw APIError.invalidRequest("'webhook_url' must be an http or https URL.", param: "webhook_url")
        }
        return url
    }
}

/// The body of `POST` and `PATCH /v1/budgets`.
struct BudgetRequest: Decodable {
    var name: String?
    var scope: BudgetScope?
    var model: String?
    var period: BudgetPeriod?
    var limitUSD: Double?
    var alertThresholds: [Double]?
    var webhookURL: String?
    var timeZone: String?

    enum CodingKeys: String, CodingKey {
        case name, scope, model, period
        case limitUSD = "limit_usd"
        case alertThresholds = "alert_thresholds"
        case webhookURL = "webhook_url"
        case timeZone = "time_zone"
    }
}

struct BudgetList: Encodable {
    var object = "list"
    var data: [BudgetView]
}

struct BuildRequest: Decodable {
    var budgetIDs: [String]

    enum CodingKeys: String, CodingKey { case budgetIDs = "budget_ids" }
}

struct Deleted: Encodable {
    var id: String
    var object = "budget.deleted"
    var deleted = true
}
