import ConduitProtocol
import Foundation
import Logging
import Postgres
import Prometheus
@testable import PromptRegistry
import Prompts
import Redis
import Testing
import TestSupport

/// The hot copy's script against the test stack's Redis: the newest revision's labels win
/// whatever order writes arrive in, versions are never lost, and every write is announced.
struct HotCopyWriterTests {
    static let logger = Logger(label: "hot-copy-test")

    static func state(_ name: String, revision: Int64, labels: [String: PromptVersion], deleted: Bool = false) -> PromptState {
        PromptState(name: name, type: .text, revision: revision, deleted: deleted,
                    labels: labels.sorted { $0.key < $1.key }.map { LabelState(label: $0.key, version: $0.value, protected: false, updatedAt: Date(), updatedBy: nil) },
                    experiment: nil, createdAt: Date())
    }

    @Test func theNewestRevisionWinsVersionsStayAndEveryWriteIsAnnounced() async throws {
        let redis = RedisClient(configuration: .init(port: TestEnvironment.redisPort, connections: 1), logger: Self.logger)
        let writer = HotCopyWriter(redis: redis, store: PromptStore(postgres: PostgresClient(configuration: .init(port: TestEnvironment.postgresPort), logger: Self.logger)),
                                   registry: PrometheusCollectorRegistry(), logger: Self.logger)
        let tenant = TestEnvironment.uniqueName("tenant")
        let key = PromptHotCopy.key(tenant: tenant, name: "greet")
        let versions = (1...3).map { PromptVersion(name: "greet", version: $0, body: .text("Hello v\($0)")) }
        func label(_ field: String) async throws -> Int? {
            try await redis.send(RedisCommand("HGET", key, field)).bytes.map { try JSONDecoder.iso.decode(PromptVersion.self, from: Data($0)).version }
        }
        let before = try await redis.send(RedisCommand("GET", PromptHotCopy.revisionKey)).int ?? 0

        await writer.write(tenant: tenant, state: Self.state("greet", revision: 5, labels: ["production": versions[1], "staging": versions[0]]),
                           versions: Array(versions[0...1]), complete: true)
        #expect(try await label("l:production") == 2)
        #expect(try await label("l:staging") == 1)
        #expect(try await label("v:1") == 1)
        #expect(try await redis.send(RedisCommand("HGET", key, "complete")).string == "1")

        // An older write arriving late: its new version is kept, its labels are not.
        await writer.write(tenant: tenant, state: Self.state("greet", revision: 3, labels: ["production": versions[0]]), versions: [versions[2]])
        #expect(try await label("l:production") == 2)
        #expect(try await label("v:3") == 3)
        #expect(try await redis.send(RedisCommand("HGET", key, "r")).string == "5")

        // A newer one replaces every label: those it does not name are gone.
        await writer.write(tenant: tenant, state: Self.state("greet", revision: 6, labels: [:], deleted: true), versions: [])
        #expect(try await label("l:production") == nil)
        #expect(try await label("l:staging") == nil)
        #expect(try await label("v:2") == 2)
        #expect(try await redis.send(RedisCommand("HGET", key, "deleted")).string == "1")

        // Each write bumped the counter and named the prompt at that count.
        let after = try await redis.send(RedisCommand("GET", PromptHotCopy.revisionKey)).int ?? 0
        #expect(after - before >= 3)
        let score = try await redis.send(RedisCommand("ZSCORE", PromptHotCopy.changesKey, PromptHotCopy.member(tenant: tenant, name: "greet"))).double
        #expect(score.map { Int($0) > before } == true)
        await redis.shutdown()
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
