import ConduitKit
import Foundation
import Logging
import NIOConcurrencyHelpers
import Prometheus
import Prompts
import Redis
import ServiceLifecycle

/// Keeps the Redis hot copy (`PromptHotCopy`) level with Postgres. Each write sends the
/// prompt's whole mutable state (labels, experiment, deleted) at its revision with any new
/// immutable versions; the script keeps the newest revision's state, so writes that reach Redis
/// out of order cannot bring an older label back. A write that fails (Redis down) leaves the
/// prompt pending: `run()` rebuilds pending prompts from Postgres until Redis takes them, and
/// until then orchestrators find no complete copy and ask the registry.
struct HotCopyError: Error {
    let message: String
}

final class HotCopyWriter: Service, Sendable {
    static let script = RedisScript("""
        local key = KEYS[1]
        local current = tonumber(redis.call('HGET', key, 'r') or '-1')
        local revision = tonumber(ARGV[1])
        local immutable = tonumber(ARGV[4])
        local i = 5
        for _ = 1, immutable do
            redis.call('HSET', key, ARGV[i], ARGV[i + 1])
            i = i + 2
        end
        if revision > current then
            for _, field in ipairs(redis.call('HKEYS', key)) do
                if string.sub(field, 1, 2) == 'l:' or field == 'x' or field == 'deleted' then redis.call('HDEL', key, field) end
            end
            while i < #ARGV do
                redis.call('HSET', key, ARGV[i], ARGV[i + 1])
                i = i + 2
            end
            redis.call('HSET', key, 'r', revision)
        end
        if ARGV[3] == '1' then redis.call('HSET', key, 'complete', '1') end
        local change = redis.call('INCR', KEYS[2])
        redis.call('ZADD', KEYS[3], change, ARGV[2])
        redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -\(PromptHotCopy.changesKept + 1))
        return change
        """)

    let redis: RedisClient
    let store: PromptStore
    let logger: Logger
    private let pending = NIOLockedValueBox<Set<Pending>>([])
    private let pendingGauge: Gauge
    private let failures: Counter
    /// Prompts waiting for a rebuild at most (beyond it the oldest are dropped: orchestrators
    /// then read them from the registry until their next change).
    let maxPending: Int

    struct Pending: Hashable, Sendable {
        let tenant: String
        let name: String
    }

    init(redis: RedisClient, store: PromptStore, registry: PrometheusCollectorRegistry, maxPending: Int = 10_000, logger: Logger) {
        self.redis = redis
        self.store = store
        self.logger = logger
        self.maxPending = maxPending
        pendingGauge = registry.makeGauge(name: "prompt_registry_hot_copy_pending", help: "Prompts whose Redis hot copy waits for a rebuild.")
        failures = registry.makeCounter(name: "prompt_registry_hot_copy_failures_total", help: "Hot copy writes Redis refused or missed.")
    }

    /// Writes the state, with `versions` (new or all of them); never throws: a failure leaves
    /// the prompt pending.
    func write(tenant: String, state: PromptState, versions: [PromptVersion], complete: Bool = false) async {
        do {
            try await send(tenant: tenant, state: state, versions: versions, complete: complete)
        } catch {
            failures.increment()
            logger.warning("prompt hot copy not written", metadata: ["prompt": "\(state.name)", "error": "\(error)"])
            markPending(Pending(tenant: tenant, name: state.name))
        }
    }

    /// Every version and label from Postgres; the copy is then complete.
    func rebuild(tenant: String, name: String) async throws {
        guard let state = try await store.state(tenant: tenant, name: name) else { return }
        try await send(tenant: tenant, state: state, versions: try await store.versions(tenant: tenant, name: name), complete: true)
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(500))
                let batch = self.pending.withLockedValue { waiting in
                    defer { waiting.removeAll() }
                    return waiting
                }
                self.pendingGauge.set(to: 0.0)
                for prompt in batch {
                    do {
                        try await self.rebuild(tenant: prompt.tenant, name: prompt.name)
                    } catch {
                        self.markPending(prompt)
                    }
                }
            }
        }
    }

    private func markPending(_ prompt: Pending) {
        let count = pending.withLockedValue { waiting in
            if waiting.count >= maxPending, let any = waiting.first { waiting.remove(any) }
            waiting.insert(prompt)
            return waiting.count
        }
        pendingGauge.set(to: Double(count))
    }

    private func send(tenant: String, state: PromptState, versions: [PromptVersion], complete: Bool) async throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var arguments: [any RedisArgument] = [
            String(state.revision), PromptHotCopy.member(tenant: tenant, name: state.name), complete ? "1" : "0", String(versions.count),
        ]
        for version in versions {
            arguments.append(PromptHotCopy.field(.version(version.version)))
            arguments.append(String(decoding: try encoder.encode(version), as: UTF8.self))
        }
        for label in state.labels {
            arguments.append(PromptHotCopy.field(.label(label.label)))
            arguments.append(String(decoding: try encoder.encode(label.version), as: UTF8.self))
        }
        if let experiment = state.experiment {
            arguments.append("x")
            arguments.append(String(decoding: try encoder.encode(experiment), as: UTF8.self))
        }
        if state.deleted {
            arguments.append("deleted")
            arguments.append("1")
        }
        let reply = try await redis.run(Self.script, keys: [PromptHotCopy.key(tenant: tenant, name: state.name), PromptHotCopy.revisionKey, PromptHotCopy.changesKey],
                                        arguments: arguments)
        if case .error(let message) = reply { throw HotCopyError(message: message) }
    }
}
