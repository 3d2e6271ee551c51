import ConduitHTTP
import ConduitKit
import ConduitProtocol
import Foundation
import HTTP
import Logging
@testable import Orchestrator
import Prompts
import Redis
import Testing
import TestSupport

/// The orchestrator's prompts over the test stack's Redis, written here as the registry writes
/// its hot copy: kept in memory until a change is announced, partials followed, a gap in the
/// change log or a missing poll never served from memory, the registry asked only when Redis
/// has no complete copy.
struct PromptDirectoryTests {
    static let logger = Logger(label: "prompt-directory-test")

    struct Copy {
        let redis: RedisClient
        let tenant: String
        /// This test's own change counter and log, so that what it does to them (a trim)
        /// touches no other test's orchestrators.
        var revisionKey: String { "tpl-test:\(tenant):rev" }
        var changesKey: String { "tpl-test:\(tenant):changes" }

        /// Writes `name`'s label (and version) as the registry would, announcing it unless `quietly`.
        func put(_ name: String, _ text: String, version: Int, label: String = "production", quietly: Bool = false) async throws {
            let json = String(decoding: try JSONEncoder().encode(PromptVersion(name: name, version: version, body: .text(text))), as: UTF8.self)
            let key = PromptHotCopy.key(tenant: tenant, name: name)
            _ = try await redis.send(RedisCommand("HSET", key, "v:\(version)", json, "l:\(label)", json, "complete", "1"))
            if !quietly { try await announce(name) }
        }

        @discardableResult
        func announce(_ name: String) async throws -> Int {
            let revision = try await redis.send(RedisCommand("INCR", revisionKey)).int ?? 0
            _ = try await redis.send(RedisCommand("ZADD", changesKey, String(revision), PromptHotCopy.member(tenant: tenant, name: name)))
            return revision
        }
    }

    static func directory(_ copy: Copy, registry: String = "http://127.0.0.1:9", staleAfter: Duration = .seconds(300)) -> HotPromptDirectory {
        let http = HTTPClient(logger: logger)
        var urls: [ServiceName: String] = [:]
        urls[.promptRegistry] = registry
        // Polled only when a test says so; what it polled stays fresh however slow the machine.
        return HotPromptDirectory(redis: copy.redis, registry: ServiceClient(http: http, baseURLs: urls),
                                  configuration: .init(staleAfter: staleAfter, revisionKey: copy.revisionKey, changesKey: copy.changesKey),
                                  metricsRegistry: nil, logger: logger)
    }

    static func text(_ directory: HotPromptDirectory, _ tenant: String, _ name: String, _ selector: PromptSelector = .production) async throws -> String? {
        try await directory.prompt(tenant: tenant, name: name, selector, headers: [])?.compiled.render([:]).text
    }

    @Test func heldUntilAChangeIsAnnouncedWithPartialsFollowed() async throws {
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 1), logger: Self.logger)
        let copy = Copy(redis: redis, tenant: TestEnvironment.uniqueName("tenant"))
        try await copy.put("tone", "kind", version: 1)
        try await copy.put("outer", "Be {{> tone}}.", version: 1)
        let directory = Self.directory(copy)
        await directory.poll()
        #expect(try await Self.text(directory, copy.tenant, "outer") == "Be kind.")

        // Changed behind its back (no announcement): memory still answers, with no Redis read.
        try await copy.put("tone", "brief", version: 2, quietly: true)
        #expect(try await Self.text(directory, copy.tenant, "outer") == "Be kind.")
        // Announced: the prompt that includes it is compiled again.
        try await copy.announce("tone")
        await directory.poll()
        #expect(try await Self.text(directory, copy.tenant, "outer") == "Be brief.")

        // A label the complete copy lacks does not exist, and the registry is not asked (it
        // is not even reachable here).
        #expect(try await directory.prompt(tenant: copy.tenant, name: "outer", .label("nope"), headers: []) == nil)
        #expect(try await Self.text(directory, copy.tenant, "outer", .version(1)) == "Be brief.")
        await redis.shutdown()
    }

    @Test func aGapInTheChangesOrNoRecentPollIsNeverServedFromMemory() async throws {
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 1), logger: Self.logger)
        let copy = Copy(redis: redis, tenant: TestEnvironment.uniqueName("tenant"))
        try await copy.put("greet", "one", version: 1)

        // Never polled: nothing is kept, every lookup reads Redis.
        let cold = Self.directory(copy)
        #expect(try await Self.text(cold, copy.tenant, "greet") == "one")
        try await copy.put("greet", "two", version: 2, quietly: true)
        #expect(try await Self.text(cold, copy.tenant, "greet") == "two")

        // Polled, then the change log loses the change as the registry trims it (the oldest
        // first, so everything up to it goes): everything held is dropped.
        let warm = Self.directory(copy)
        await warm.poll()
        #expect(try await Self.text(warm, copy.tenant, "greet") == "two")
        try await copy.put("greet", "three", version: 3, quietly: true)
        let trimmed = try await copy.announce("greet")
        _ = try await redis.send(RedisCommand("ZREMRANGEBYSCORE", copy.changesKey, "-inf", String(trimmed)))
        try await copy.announce("unrelated")
        await warm.poll()
        #expect(try await Self.text(warm, copy.tenant, "greet") == "three")

        // Its last good poll too old: memory is not used (polls failing look like this).
        let lapsed = Self.directory(copy, staleAfter: .milliseconds(200))
        await lapsed.poll()
        #expect(try await Self.text(lapsed, copy.tenant, "greet") == "three")
        try await Task.sleep(for: .milliseconds(300))
        try await copy.put("greet", "four", version: 4, quietly: true)
        #expect(try await Self.text(lapsed, copy.tenant, "greet") == "four")
        await redis.shutdown()
    }

    @Test func withoutACompleteCopyTheRegistryIsAsked() async throws {
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 1), logger: Self.logger)
        let tenant = TestEnvironment.uniqueName("tenant")
        let copy = Copy(redis: redis, tenant: tenant)
        let asked = Locked<[String]>([])
        let registry = try TestHTTPServer { request, connection in
            asked.withLock { $0.append(request.path) }
            guard request.path.hasPrefix("/internal/prompts/folder/cold?") else {
                return connection.respond(status: 404, headers: ["Content-Type": "application/json"], body: Array(#"{"error":{"message":"no","type":"invalid_request_error"}}"#.utf8))
            }
            let body = #"{"version":{"name":"folder/cold","version":4,"type":"text","template":"from the registry","config":{}}}"#
            connection.respond(headers: ["Content-Type": "application/json"], body: Array(body.utf8))
        }
        defer { registry.stop() }
        let directory = Self.directory(copy, registry: registry.baseURL)
        await directory.poll()
        #expect(try await Self.text(directory, tenant, "folder/cold") == "from the registry")
        #expect(asked.withLock { $0 } == ["/internal/prompts/folder/cold?label=production"])
        #expect(try await directory.prompt(tenant: tenant, name: "missing", .production, headers: []) == nil)
        await redis.shutdown()
    }
}
