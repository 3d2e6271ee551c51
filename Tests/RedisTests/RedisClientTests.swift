import Logging
import Prometheus
import Redis
import Testing
import TestSupport

/// Against the test stack's Redis; every test uses its own key prefix.
@Suite(.timeLimit(.minutes(3)))
struct RedisClientTests {
    static func makeClient(port: Int = TestEnvironment.redisPort, connections: Int = 2) -> RedisClient {
        RedisClient(configuration: .init(port: port, connections: connections), logger: Logger(label: "test"))
    }

    @Test func stringsHashesSortedSetsAndCountersRoundTrip() async throws {
        let redis = Self.makeClient()
        let prefix = TestEnvironment.uniqueName("rt")
        #expect(try await redis.ping())

        // A TTL long enough that a starved test machine cannot outlast it between two commands.
        try await redis.set("\(prefix):s", "value", ttl: .seconds(600))
        #expect(try await redis.getString("\(prefix):s") == "value")
        let ttl = try #require(try await redis.pttl("\(prefix):s"))
        #expect(ttl > 0 && ttl <= 600_000)
        #expect(try await redis.set("\(prefix):s", "other", onlyIfAbsent: true) == false)
        #expect(try await redis.getString("\(prefix):s") == "value")

        let binary: [UInt8] = [0, 1, 2, 255, 0, 13, 10]
        try await redis.set("\(prefix):b", binary)
        #expect(try await redis.get("\(prefix):b") == binary)
        #expect(try await redis.get("\(prefix):missing") == nil)

        #expect(try await redis.incrBy("\(prefix):n", 5) == 5)
        #expect(try await redis.incrBy("\(prefix):n", -2) == 3)
        #expect(try await redis.incrByFloat("\(prefix):f", 0.25) == 0.25)
        #expect(try await redis.incrByFloat("\(prefix):f", 1.5) == 1.75)

        #expect(try await redis.hset("\(prefix):h", ["a": "1", "b": "two"]) == 2)
        #expect(try await redis.hget("\(prefix):h", "b") == "two")
        #expect(try await redis.hgetall("\(prefix):h") == ["a": "1", "b": "two"])
        #expect(try await redis.hincrBy("\(prefix):h", "a", 41) == 42)

        #expect(try await redis.zadd("\(prefix):z", [(3, "c"), (1, "a"), (2, "b")]) == 3)
        #expect(try await redis.zrange("\(prefix):z", start: 0, stop: -1).map(\.member) == ["a", "b", "c"])
        #expect(try await redis.zrangeByScore("\(prefix):z", min: 1.5, max: 3).map(\.score) == [2, 3])
        #expect(try await redis.zrem("\(prefix):z", "b") == 1)
        #expect(try await redis.zcard("\(prefix):z") == 2)

        #expect(try await redis.exists("\(prefix):h"))
        #expect(try await redis.del("\(prefix):h", "\(prefix):z", "\(prefix):nothing") == 2)
        #expect(try await redis.exists("\(prefix):h") == false)
    }

    @Test func pipelineKeepsOrderAndErrorRepliesInPlace() async throws {
        let redis = Self.makeClient()
        let key = TestEnvironment.uniqueName("pipe")
        let replies = try await redis.pipeline(
            (0..<100).map { _ in RedisCommand("INCR", key) } + [RedisCommand("HGET", key, "field"), RedisCommand("GET", key)]
        )
        #expect(replies.prefix(100).map(\.int) == (1...100).map { $0 })
        guard case .error(let message) = replies[100] else { Issue.record("expected WRONGTYPE error"); return }
        #expect(message.hasPrefix("WRONGTYPE"))
        #expect(replies[101].string == "100")
    }

    @Test func serverErrorsAreThrownWithoutTheKey() async throws {
        let redis = Self.makeClient()
        let key = TestEnvironment.uniqueName("secret_key")
        try await redis.set(key, "text")
        let error = try await #require(throws: RedisError.self) { try await redis.incrBy(key, 1) }
        #expect(error.code == .serverError)
        #expect(error.serverErrorKind == "ERR")
        #expect(!error.description.contains(key))
    }

    @Test func scriptIsAtomicUnderFiftyConcurrentTasks() async throws {
        let redis = Self.makeClient(connections: 4)
        let key = TestEnvironment.uniqueName("atomic")
        // Read-modify-write that would lose updates if two runs interleaved.
        let script = RedisScript("""
            local value = tonumber(redis.call('GET', KEYS[1]) or '0')
            redis.call('SET', KEYS[1], value + tonumber(ARGV[1]))
            return value + tonumber(ARGV[1])
            """)
        let results = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<50 {
                group.addTask {
                    var seen: [Int] = []
                    for _ in 0..<20 { seen.append(try await redis.run(script, keys: [key], arguments: [1]).int ?? -1) }
                    return seen
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(results.count == 1000)
        #expect(Set(results) == Set(1...1000))
        #expect(try await redis.getString(key) == "1000")
    }

    @Test func scriptIsReloadedAfterTheServerForgetsIt() async throws {
        let redis = Self.makeClient()
        let script = RedisScript("return ARGV[1] .. '!'")
        #expect(try await redis.run(script, arguments: ["a"]).string == "a!")
        _ = try await redis.send(RedisCommand("SCRIPT", "FLUSH"))
        #expect(try await redis.run(script, arguments: ["b"]).string == "b!")
    }

    @Test func reconnectsAfterTheServerRestarts() async throws {
        let directory = TestEnvironment.scratchDirectory("redis-restart")
        let port = TestEnvironment.redisPort + 1
        try await StackControl.run("start-redis", directory, String(port))
        let redis = Self.makeClient(port: port, connections: 1)
        try await redis.set("k", "before")
        try await StackControl.run("stop-redis", directory)
        await #expect(throws: RedisError.self) { try await redis.getString("k") }
        try await StackControl.run("start-redis", directory, String(port))
        // The restarted server is empty (no persistence); the client must work on the first try.
        #expect(try await redis.getString("k") == nil)
        try await redis.set("k", "after")
        #expect(try await redis.getString("k") == "after")
        await redis.shutdown()
        try await StackControl.run("stop-redis", directory)
    }

    @Test func commandsAfterShutdownFail() async throws {
        let redis = Self.makeClient()
        await redis.shutdown()
        let error = try await #require(throws: RedisError.self) { try await redis.ping() }
        #expect(error.code == .shutdown)
    }
}

extension RedisClientTests {
    /// While a command holds the connection (BLPOP waits 2 s), commands queue behind it: at most
    /// `maxQueued` of them, the next one refused at once; a queued one whose caller is cancelled
    /// returns at once, unsent, instead of waiting its turn; the others run when the way clears.
    @Test func theQueueIsBoundedAndACancelledCallerLeavesItAtOnce() async throws {
        let registry = PrometheusCollectorRegistry()
        var configuration = RedisConfiguration(port: TestEnvironment.redisPort, connections: 1, maxQueued: 3)
        configuration.commandTimeoutSeconds = 15
        let redis = RedisClient(configuration: configuration, registry: registry, logger: Logger(label: "test"))
        let key = TestEnvironment.uniqueName("queue")
        // Blocks the one connection for 10 s (under this client's 15 s reply limit): long beside
        // what queueing three commands, a refusal and a cancellation may take on a loaded machine
        // (the 4 s it once blocked were all spent queueing under a full integration tier).
        let blocker = Task { try await redis.send(RedisCommand("BLPOP", key + ":never", 10)) }
        #expect(try await eventually(within: .seconds(10)) { redis.queuedCount == 0 })
        try await Task.sleep(for: .milliseconds(200))  // BLPOP is on the wire

        let waiting = (0..<2).map { number in Task { try await redis.send(RedisCommand("INCRBY", key, number + 1)) } }
        let cancelled = Task { try await redis.send(RedisCommand("INCRBY", key, 100)) }
        #expect(try await eventually(within: .seconds(5)) { redis.queuedCount == 3 })

        // The fourth waiting command is refused without waiting.
        let started = ContinuousClock.now
        await #expect(throws: RedisError.self) { try await redis.send(RedisCommand("INCRBY", key, 1000)) }
        do {
            _ = try await redis.send(RedisCommand("PING"))
            Issue.record("a command beyond the bound was queued")
        } catch let error as RedisError {
            #expect(error.code == .overloaded)
        }
        cancelled.cancel()
        let outcome = await cancelled.result
        #expect(ContinuousClock.now - started < .milliseconds(2500), "a refused or cancelled command waited for the connection")
        guard case .failure(let error) = outcome, error is CancellationError else { Issue.record("expected CancellationError, got \(outcome)"); return }
        #expect(redis.queuedCount == 2)

        _ = try await blocker.value
        for task in waiting { _ = try await task.value }
        // The cancelled INCRBY 100 was never sent.
        #expect(try await redis.send(RedisCommand("GET", key)).string == "3")
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("conduit_redis_refused_commands_total 2"))
        #expect(text.contains("conduit_redis_cancelled_commands_total 1"))
        #expect(text.contains("conduit_redis_queued_commands 0"))
        await redis.shutdown()
    }
}
