import ConduitKit
import ConduitProtocol
import Foundation
import Hummingbird
import Postgres
import Prometheus
import Prompts

/// `/v1/experiments`: traffic split between a prompt's versions or labels, sticky per user or
/// session, with per-variant results and the statistics to decide on; `/v1/feedback` scores
/// an answer by its request id.
struct ExperimentController: Sendable {
    let store: PromptStore
    let hotCopy: HotCopyWriter
    /// Where `llm_response_quality_score` is recorded, if anywhere.
    var registry: PrometheusCollectorRegistry?
    var postgres: PostgresClient { store.postgres }

    /// Feedback scores are any finite number; these buckets fit 0…1, 1…5 and 1…10 scales.
    static let qualityBuckets = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 2, 3, 4, 5, 7.5, 10]

    /// The metrics an experiment can be decided on, and whether higher is better.
    static let metrics: [String: Bool] = ["thumbs": true, "score": true, "error_rate": false, "latency_ms": false, "cost_usd": false]

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/experiments") { request, context in try await create(request, context) }
        router.get("/v1/experiments") { _, context in
            try context.require(.readPrompts, "Reading experiments needs the viewer, developer or admin role.")
            let rows = try await postgres.query("""
                SELECT id, prompt_name, name, label, subject, metric, variants, status, winner, created_at, concluded_at
                FROM prompts.experiments WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 200
                """, try context.callerTenant())
            return try jsonResponse(JSONValue.object(["object": "list", "data": .array(try rows.map(Self.experiment))]))
        }
        router.get("/v1/experiments/:id") { _, context in
            try context.require(.readPrompts, "Reading experiments needs the viewer, developer or admin role.")
            return try jsonResponse(try await results(try context.pathParameter("id"), tenant: try context.callerTenant()))
        }
        router.post("/v1/experiments/:id/conclude") { request, context in try await conclude(request, context) }
        router.post("/v1/feedback") { request, context in try await feedback(request, context) }
    }

    struct CreateRequest: Decodable {
        var prompt: String?
        var name: String?
        var label: String?
        var subject: String?
        var metric: String?
        var variants: [ExperimentAssignment.Variant]?
    }

    func create(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.writePrompts, "Running experiments needs the developer or admin role.")
        let ask = try await request.decodeJSON(CreateRequest.self, context: context)
        guard let prompt = ask.prompt, PromptNames.isValidName(prompt) else {
            throw APIError.invalidRequest("'prompt' names the prompt the experiment runs on.", param: "prompt")
        }
        let label = ask.label ?? "production"
        let subject = ask.subject ?? "user"
        guard ["user", "session"].contains(subject) else { throw APIError.invalidRequest("'subject' is user or session.", param: "subject") }
        let metric = ask.metric ?? "thumbs"
        guard Self.metrics[metric] != nil else {
            throw APIError.invalidRequest("'metric' is one of \(Self.metrics.keys.sorted().joined(separator: ", ")).", param: "metric")
        }
        guard let variants = ask.variants, (2...10).contains(variants.count) else {
            throw APIError.invalidRequest("'variants' lists 2 to 10 variants, the control first: {\"name\", \"label\" | \"version\", \"weight\"}.", param: "variants")
        }
        if let name = ask.name, name.isEmpty || name.utf8.count > 200 || name.utf8.contains(0) {
            throw APIError.invalidRequest("'name' is 1 to 200 bytes of text.", param: "name")
        }
        guard PromptNames.isValidLabel(label) else { throw APIError.invalidRequest("'label' is a label of the prompt.", param: "label") }
        guard variants.allSatisfy({ variant in variant.version.map(PromptController.versions.contains) ?? true }),
              variants.allSatisfy({ variant in variant.label.map(PromptNames.isValidLabel) ?? true }) else {
            throw APIError.invalidRequest("A variant's 'version' is a version number from 1 and its 'label' a label.", param: "variants")
        }
        guard Set(variants.map(\.name)).count == variants.count, variants.allSatisfy({ PromptNames.isValidLabel($0.name) }) else {
            throw APIError.invalidRequest("Each variant has its own 'name' (letters, digits, '.', '-', '_').", param: "variants")
        }
        guard variants.allSatisfy({ $0.weight.isFinite && $0.weight >= 0 }), variants.contains(where: { $0.weight > 0 }) else {
            throw APIError.invalidRequest("Weights are non-negative numbers, at least one above 0.", param: "variants")
        }
        let tenant = caller.tenant
        guard let state = try await store.state(tenant: tenant, name: prompt), !state.deleted else { throw PromptController.notFound(prompt) }
        for variant in variants {
            guard (variant.label == nil) != (variant.version == nil) else {
                throw APIError.invalidRequest("Variant '\(variant.name)' serves a 'label' or a 'version'.", param: "variants")
            }
            guard try await store.version(tenant: tenant, name: prompt, variant.selector) != nil else {
                throw APIError.invalidRequest("Variant '\(variant.name)': '\(prompt)' has no \(variant.selector).", param: "variants")
            }
        }
        let id = "exp_" + UUIDv7.make().replacingOccurrences(of: "-", with: "")
        do {
            try await postgres.query("""
                INSERT INTO prompts.experiments (id, tenant_id, prompt_name, name, label, subject, metric, variants, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, 'running')
                """, id, tenant, prompt, ask.name ?? prompt, label, subject, metric, try PostgresJSON(encoding: variants))
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw APIError(status: .conflict, type: .invalidRequest, message: "'\(prompt)' already has a running experiment; conclude it first.",
                           code: "experiment_running")
        }
        await hotCopy.write(tenant: tenant, state: try await store.touch(tenant: tenant, name: prompt), versions: [])
        return try jsonResponse(try await results(id, tenant: tenant), status: .created)
    }

    /// The experiment with each variant's counts and means and each treatment against the
    /// control, on every metric; the recommendation reads the experiment's own metric.
    func results(_ id: String, tenant: String) async throws -> JSONValue {
        guard let row = try await postgres.query("""
            SELECT id, prompt_name, name, label, subject, metric, variants, status, winner, created_at, concluded_at
            FROM prompts.experiments WHERE id = $1 AND tenant_id = $2
            """, id, tenant).first else {
            throw APIError.notFound("No experiment is '\(id)'.")
        }
        var experiment = try Self.experiment(row).objectValue ?? [:]
        let variants = try row.decode(PostgresJSON.self, at: 6).decode([ExperimentAssignment.Variant].self)
        let metric = try row.decode(String.self, at: 5)
        let rows = try await postgres.query("""
            SELECT o.variant, count(*), count(*) FILTER (WHERE o.failed),
                   count(o.latency_ms), coalesce(avg(o.latency_ms), 0), coalesce(var_samp(o.latency_ms), 0),
                   count(o.cost_usd), coalesce(avg(o.cost_usd), 0), coalesce(var_samp(o.cost_usd), 0), coalesce(avg(o.tokens), 0),
                   count(f.thumbs_up), count(*) FILTER (WHERE f.thumbs_up),
                   count(f.score), coalesce(avg(f.score), 0), coalesce(var_samp(f.score), 0)
            FROM prompts.outcomes o LEFT JOIN prompts.feedback f ON f.tenant_id = o.tenant_id AND f.request_id = o.request_id
            WHERE o.experiment_id = $1 AND o.tenant_id = $2 GROUP BY o.variant
            """, id, tenant)
        var summaries: [String: [String: OutcomeSummary]] = [:]
        var extra: [String: [String: JSONValue]] = [:]
        for row in rows {
            let name = try row.decode(String.self, at: 0)
            let requests = try row.decode(Int.self, at: 1)
            summaries[name] = [
                "error_rate": OutcomeSummary(successes: try row.decode(Int.self, at: 2), of: requests),
                "latency_ms": OutcomeSummary(count: try row.decode(Int.self, at: 3), mean: try row.decode(Double.self, at: 4), variance: try row.decode(Double.self, at: 5)),
                "cost_usd": OutcomeSummary(count: try row.decode(Int.self, at: 6), mean: try row.decode(Double.self, at: 7), variance: try row.decode(Double.self, at: 8)),
                "thumbs": OutcomeSummary(successes: try row.decode(Int.self, at: 11), of: try row.decode(Int.self, at: 10)),
                "score": OutcomeSummary(count: try row.decode(Int.self, at: 12), mean: try row.decode(Double.self, at: 13), variance: try row.decode(Double.self, at: 14)),
            ]
            extra[name] = ["requests": .number(Double(requests)), "tokens_mean": .number(try row.decode(Double.self, at: 9))]
        }
        let control = variants[0].name
        var entries: [JSONValue] = []
        var better: [String] = [], worse: [String] = []
        for variant in variants {
            var entry: [String: JSONValue] = ["name": .string(variant.name), "weight": .number(variant.weight)]
            if let label = variant.label { entry["label"] = .string(label) }
            if let version = variant.version { entry["version"] = .number(Double(version)) }
            entry.merge(extra[variant.name] ?? ["requests": 0], uniquingKeysWith: { $1 })
            var metrics: [String: JSONValue] = [:]
            for (name, higherIsBetter) in Self.metrics {
                let summary = summaries[variant.name]?[name] ?? OutcomeSummary(count: 0, mean: 0, variance: 0)
                var value: [String: JSONValue] = ["count": .number(Double(summary.count)), "mean": .number(summary.mean)]
                if variant.name != control {
                    let comparison = ExperimentStatistics.compare(
                        control: summaries[control]?[name] ?? OutcomeSummary(count: 0, mean: 0, variance: 0), treatment: summary,
                        binary: name == "thumbs" || name == "error_rate")
                    value["vs_control"] = try JSONValue.encoding(comparison)
                    if name == metric, comparison.significant {
                        if (comparison.difference > 0) == higherIsBetter { better.append(variant.name) } else { worse.append(variant.name) }
                    }
                }
                metrics[name] = .object(value)
            }
            entry["metrics"] = .object(metrics)
            entries.append(.object(entry))
        }
        experiment["variants"] = .array(entries)
        experiment["control"] = .string(control)
        let recommendation: String
        if let winner = better.first {
            recommendation = "'\(winner)' is better than '\(control)' on \(metric) (sequential test, 5 % false positive rate): promote it."
        } else if worse.count == variants.count - 1 {
            recommendation = "Every variant is worse than '\(control)' on \(metric): keep '\(control)'."
        } else {
            recommendation = "No variant differs from '\(control)' on \(metric) yet: keep collecting (the decision stays valid however often you look)."
        }
        experiment["recommendation"] = .string(recommendation)
        if let winner = better.first { experiment["recommended_winner"] = .string(winner) }
        return .object(experiment)
    }

    struct ConcludeRequest: Decodable {
        var winner: String?
        var moveLabel: Bool?
        enum CodingKeys: String, CodingKey {
            case winner
            case moveLabel = "move_label"
        }
    }

    /// Ends the experiment; with `move_label`, its label moves to the winner's version.
    func conclude(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.writePrompts, "Concluding experiments needs the developer or admin role.")
        let id: String = try context.pathParameter("id")
        let ask = try await request.decodeJSON(ConcludeRequest.self, context: context)
        let current = try await results(id, tenant: caller.tenant)
        guard current["status"] == "running" else { throw APIError.invalidRequest("The experiment is already concluded.", code: "experiment_concluded") }
        guard case .string(let prompt)? = current["prompt"], case .string(let label)? = current["label"] else { throw APIError.notFound("No experiment is '\(id)'.") }
        let winner = ask.winner ?? current["recommended_winner"].flatMap { if case .string(let name) = $0 { name } else { nil } }
        // The page lists the variants it read with the experiment.
        let variants: [ExperimentAssignment.Variant] = (current["variants"]?.arrayValue ?? []).compactMap { entry in
            guard case .string(let name)? = entry["name"] else { return nil }
            return ExperimentAssignment.Variant(name: name, label: entry["label"]?.stringValue, version: entry["version"]?.intValue,
                                                weight: entry["weight"]?.doubleValue ?? 0)
        }
        if let winner, !variants.contains(where: { $0.name == winner }) {
            throw APIError.invalidRequest("The experiment has no variant '\(winner)'.", param: "winner")
        }
        if ask.moveLabel == true {
            guard let winner, let variant = variants.first(where: { $0.name == winner }) else {
                throw APIError.invalidRequest("Moving the label needs a 'winner' (none is recommended yet).", param: "winner")
            }
            guard let version = try await store.version(tenant: caller.tenant, name: prompt, variant.selector) else { throw PromptController.notFound(prompt) }
            do {
                let write = try await store.moveLabel(tenant: caller.tenant, name: prompt, label: label, version: version.version, protect: nil,
                                                      by: caller.user ?? caller.keyID, mayMoveProtected: caller.can(.manageKeys))
                await hotCopy.write(tenant: caller.tenant, state: write.state, versions: [])
            } catch PromptStoreError.protectedLabel(let label) {
                throw PromptController.protectedError(label)
            }
        }
        try await postgres.query("""
            UPDATE prompts.experiments SET status = 'concluded', winner = $3, concluded_at = now() WHERE id = $1 AND tenant_id = $2
            """, id, caller.tenant, winner)
        await hotCopy.write(tenant: caller.tenant, state: try await store.touch(tenant: caller.tenant, name: prompt), versions: [])
        return try jsonResponse(try await results(id, tenant: caller.tenant))
    }

    struct FeedbackRequest: Decodable {
        var requestID: String?
        var score: Double?
        var thumbs: String?
        var comment: String?
        enum CodingKeys: String, CodingKey {
            case score, thumbs, comment
            case requestID = "request_id"
        }
    }

    /// A score (any finite number) and/or thumbs (`up`/`down`) for an answer, by its request id;
    /// sent again, it replaces the first.
    func feedback(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let caller = try context.require(.infer, "Sending feedback needs a role that may call the models.")
        let ask = try await request.decodeJSON(FeedbackRequest.self, context: context)
        guard let id = ask.requestID, !id.isEmpty, id.utf8.count <= 200, !id.utf8.contains(0) else {
            throw APIError.invalidRequest("'request_id' is the id of the answer (its X-Request-Id).", param: "request_id")
        }
        guard ask.score != nil || ask.thumbs != nil else { throw APIError.invalidRequest("Give a 'score', 'thumbs' (up or down), or both.", param: "score") }
        if let score = ask.score, !score.isFinite { throw APIError.invalidRequest("'score' is a finite number.", param: "score") }
        let thumbs: Bool? = try ask.thumbs.map { value in
            switch value {
            case "up": return true
            case "down": return false
            default: throw APIError.invalidRequest("'thumbs' is up or down.", param: "thumbs")
            }
        }
        if let comment = ask.comment, comment.utf8.count > 4000 || comment.utf8.contains(0) {
            throw APIError.invalidRequest("'comment' is at most 4000 bytes of text.", param: "comment")
        }
        try await postgres.query("""
            INSERT INTO prompts.feedback (tenant_id, request_id, score, thumbs_up, comment) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id, request_id) DO UPDATE SET score = excluded.score, thumbs_up = excluded.thumbs_up, comment = excluded.comment, created_at = now()
            """, caller.tenant, id, ask.score, thumbs, ask.comment)
        recordQuality(score: ask.score, thumbs: thumbs)
        return try jsonResponse(JSONValue.object(["request_id": .string(id), "recorded": true]), status: .created)
    }

    /// `llm_response_quality_score{kind}`: `score` observes the score, `thumbs` observes 1 for
    /// up and 0 for down. No other label: feedback names a request, never a model we could trust.
    func recordQuality(score: Double?, thumbs: Bool?) {
        guard let registry else { return }
        func histogram(_ kind: String) -> ValueHistogram {
            registry.makeValueHistogram(
                descriptor: .init(namespace: "llm", metricName: "response_quality", unitName: "score",
                                  helpText: "Feedback on answers: scores as sent (kind=score), thumbs as 1 up / 0 down (kind=thumbs)."),
                labels: [("kind", kind)], buckets: Self.qualityBuckets)
        }
        if let score { histogram("score").record(score) }
        if let thumbs { histogram("thumbs").record(thumbs ? 1.0 : 0.0) }
    }

    static func experiment(_ row: PostgresRow) throws -> JSONValue {
        let formatter = ISO8601DateFormatter()
        return .object([
            "id": .string(try row.decode(String.self, at: 0)), "prompt": .string(try row.decode(String.self, at: 1)),
            "name": .string(try row.decode(String.self, at: 2)), "label": .string(try row.decode(String.self, at: 3)),
            "subject": .string(try row.decode(String.self, at: 4)), "metric": .string(try row.decode(String.self, at: 5)),
            "status": .string(try row.decode(String.self, at: 7)),
            "winner": try row.decode(String?.self, at: 8).map(JSONValue.string) ?? .null,
            "created_at": .string(formatter.string(from: try row.decode(Date.self, at: 9))),
            "concluded_at": try row.decode(Date?.self, at: 10).map { .string(formatter.string(from: $0)) } ?? .null,
        ])
    }
}
