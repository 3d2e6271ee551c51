import ConduitHTTP
import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Logging
import NIOConcurrencyHelpers
import Prometheus
import Prompts
import Redis
import ServiceLifecycle

/// A prompt as the chat path uses it: compiled with its partials, and the experiment running
/// on it, if any.
struct ResolvedPrompt: Sendable {
    var compiled: CompiledPrompt
    var experiment: HotExperiment?
}

/// Where the chat path finds prompts.
protocol PromptDirectory: Sendable {
    /// The compiled version, nil when the prompt (or its label or version) does not exist.
    func prompt(tenant: String, name: String, _ selector: PromptSelector, context: ConduitRequestContext) async throws -> ResolvedPrompt?
}

/// Prompts from the registry's hot copy in Redis (`PromptHotCopy`), compiled once and kept in
/// process. A lookup the process holds costs no I/O; one it does not costs one Redis call
/// (more for partials), and only when Redis has no complete copy a call to the registry.
///
/// Never stale past `staleAfter`: `run()` polls `tpl:rev` every `pollInterval` and drops the
/// prompts `tpl:changes` names (everything when it fell behind the kept changes or Redis lost
/// the counter). When polls fail for `staleAfter`, nothing is served from the process until
/// one succeeds. A lookup that raced a change is not kept.
final class HotPromptDirectory: PromptDirectory, Service {
    struct Configuration: Sendable {
        var pollInterval: Duration = .milliseconds(200)
        var staleAfter: Duration = .seconds(1)
        /// Compiled prompts kept, at most (`CONDUIT_ORCHESTRATOR_PROMPT_CACHE_ENTRIES`).
        var maxEntries = 10_000
        /// The change counter and log the registry writes (a test gives its own).
        var revisionKey = PromptHotCopy.revisionKey
        var changesKey = PromptHotCopy.changesKey
    }

    struct Key: Hashable, Sendable {
        let tenant: String
        let name: String
        let selector: PromptSelector
    }

    private struct Entry {
        var prompt: ResolvedPrompt?
        /// `tenant:name` of the prompt and its partials.
        var members: Set<String>
        var used: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var generation: UInt64 = 0
        var seenRevision: Int?
        var lastPoll: ContinuousClock.Instant?
        var clock: UInt64 = 0
    }

    let redis: RedisClient
    let registry: ServiceClient
    let configuration: Configuration
    let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let metrics: Metrics

    struct Metrics: Sendable {
        let entries: Gauge
        /// `orchestrator_prompt_lookups_total` by where the lookup was answered.
        let memory, redis, registry: Counter

        init(registry: PrometheusCollectorRegistry?) {
            let metrics = registry ?? PrometheusCollectorRegistry()
            entries = metrics.makeGauge(name: "orchestrator_prompt_cache_entries", help: "Compiled prompts held in process.")
            func lookups(_ source: String) -> Counter {
                metrics.makeCounter(name: "orchestrator_prompt_lookups_total", labels: [("source", source)],
                                    help: "Prompt lookups of the chat path, by where they were answered: memory, redis, registry.")
            }
            memory = lookups("memory")
            redis = lookups("redis")
            self.registry = lookups("registry")
        }
    }

    init(redis: RedisClient, registry: ServiceClient, configuration: Configuration, metricsRegistry: PrometheusCollectorRegistry?, logger: Logger) {
        self.redis = redis
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        self.metrics = Metrics(registry: metricsRegistry)
    }

    func prompt(tenant: String, name: String, _ selector: PromptSelector, context: ConduitRequestContext) async throws -> ResolvedPrompt? {
        try await prompt(tenant: tenant, name: name, selector, headers: ServiceClient.propagatedHeaders(from: context))
    }

    /// `headers` carry the caller's signed identity to the registry, when it is asked.
    func prompt(tenant: String, name: String, _ selector: PromptSelector, headers: [(name: String, value: String)]) async throws -> ResolvedPrompt? {
        let key = Key(tenant: tenant, name: name, selector: selector)
        let (held, generation, fresh) = state.withLockedValue { state -> (Entry?, UInt64, Bool) in
            let fresh = state.lastPoll.map { ContinuousClock.now - $0 < configuration.staleAfter } ?? false
            guard fresh, var entry = state.entries[key] else { return (nil, state.generation, fresh) }
            state.clock += 1
            entry.used = state.clock
            state.entries[key] = entry
            return (entry, state.generation, fresh)
        }
        if let held {
            metrics.memory.increment()
            return held.prompt
        }
        guard let root = try await raw(tenant: tenant, name: name, selector, headers: headers) else {
            if fresh { keep(key, Entry(prompt: nil, members: [PromptHotCopy.member(tenant: tenant, name: name)], used: 0), ifStill: generation) }
            return nil
        }
        let compiled = try await PromptCompiler.compile(root.version) { partial, partialSelector in
            try await self.raw(tenant: tenant, name: partial, partialSelector, headers: headers)?.version
        }
        let resolved = ResolvedPrompt(compiled: compiled, experiment: root.experiment)
        if fresh {
            keep(key, Entry(prompt: resolved, members: Set(compiled.dependencies.map { PromptHotCopy.member(tenant: tenant, name: $0) }), used: 0), ifStill: generation)
        }
        return resolved
    }

    /// Keeps the entry unless a change was seen since the lookup began.
    private func keep(_ key: Key, _ entry: Entry, ifStill generation: UInt64) {
        let count = state.withLockedValue { state -> Int in
            guard state.generation == generation else { return state.entries.count }
            if state.entries[key] == nil, state.entries.count >= configuration.maxEntries,
               let oldest = state.entries.min(by: { $0.value.used < $1.value.used })?.key {
                state.entries[oldest] = nil
            }
            state.clock += 1
            var entry = entry
            entry.used = state.clock
            state.entries[key] = entry
            return state.entries.count
        }
        metrics.entries.set(to: Double(count))
    }

    struct Raw: Sendable {
        var version: PromptVersion
        var experiment: HotExperiment?
    }

    /// One version from the hot copy, else from the registry; nil when it does not exist.
    func raw(tenant: String, name: String, _ selector: PromptSelector, headers: [(name: String, value: String)]) async throws -> Raw? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            let reply = try await redis.send(RedisCommand(
                "HMGET", PromptHotCopy.key(tenant: tenant, name: name), PromptHotCopy.field(selector), "complete", "deleted", "x"))
            let fields = reply.array ?? []
            if fields.count == 4 {
                if fields[2].string == "1" {
                    metrics.redis.increment()
                    return nil
                }
                if let bytes = fields[0].bytes {
                    metrics.redis.increment()
                    return Raw(version: try decoder.decode(PromptVersion.self, from: Data(bytes)),
                               experiment: try fields[3].bytes.map { try decoder.decode(HotExperiment.self, from: Data($0)) })
                }
                if fields[1].string == "1" {
                    metrics.redis.increment()
                    return nil
                }
            }
        } catch {
            logger.warning("prompt hot copy unreadable; asking the registry", metadata: [LogKey.error: "\(error)"])
        }
        metrics.registry.increment()
        let query = switch selector {
        case .label(let label): "label=\(label)"
        case .version(let version): "version=\(version)"
        }
        let path = "/internal/prompts/" + name.split(separator: "/").map { escapedPathSegment(String($0)) }.joined(separator: "/") + "?" + query
        let response = try await registry.send(to: .promptRegistry, method: "GET", path: path, headers: headers, timeout: .seconds(5))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        if response.status == 404 { return nil }
        guard response.status == 200 else { throw APIError.serviceUnavailable("The prompt registry answered \(response.status).") }
        struct Answer: Decodable {
            var version: PromptVersion
            var experiment: HotExperiment?
        }
        let answer = try decoder.decode(Answer.self, from: Data(bytes))
        return Raw(version: answer.version, experiment: answer.experiment)
    }

    /// Polls the change counter until shutdown.
    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.poll()
                try await Task.sleep(for: self.configuration.pollInterval)
            }
        }
    }

    /// One poll: drops what changed since the last one.
    func poll() async {
        do {
            let revision = try await redis.send(RedisCommand("GET", configuration.revisionKey)).string.flatMap { Int($0) } ?? 0
            let seen = state.withLockedValue { $0.seenRevision }
            var changed: Set<String>? = []
            if let seen, revision > seen {
                let reply = try await redis.send(RedisCommand("ZRANGEBYSCORE", configuration.changesKey, "(\(seen)", String(revision), "WITHSCORES"))
                let items = reply.array ?? []
                let scores = stride(from: 1, to: items.count, by: 2).compactMap { items[$0].string.flatMap(Double.init) }
                // Every change since `seen` must still be listed, else some were trimmed.
                if (scores.min().map { Int($0) } ?? Int.max) > seen + 1 {
                    changed = nil
                } else {
                    changed = Set(stride(from: 0, to: items.count, by: 2).compactMap { items[$0].string })
                }
            } else if seen == nil || revision < seen! {
                // First poll, or Redis lost the counter: nothing held can be trusted.
                changed = nil
            }
            let count = state.withLockedValue { state -> Int in
                if let changed {
                    if !changed.isEmpty {
                        state.generation += 1
                        state.entries = state.entries.filter { $0.value.members.isDisjoint(with: changed) }
                    }
                } else {
                    state.generation += 1
                    state.entries.removeAll()
                }
                state.seenRevision = revision
                state.lastPoll = .now
                return state.entries.count
            }
            metrics.entries.set(to: Double(count))
        } catch {
            logger.debug("prompt changes not polled", metadata: [LogKey.error: "\(error)"])
        }
    }
}
