/// The commands the platform uses, typed. Each throws `RedisError(.serverError)` for an error reply.
extension RedisClient {
    func call(_ name: String, _ arguments: [any RedisArgument]) async throws -> RedisValue {
        try await send(RedisCommand(name, arguments: arguments)).orThrow()
    }

    public func ping() async throws -> Bool {
        try await call("PING", []).string == "PONG"
    }

    public func get(_ key: String) async throws -> [UInt8]? {
        if case .bulk(let bytes) = try await call("GET", [key]) { return bytes }
        return nil
    }

    public func getString(_ key: String) async throws -> String? {
        try await get(key).map { String(decoding: $0, as: UTF8.self) }
    }

    /// SET with an optional time to live (milliseconds precision) and NX. Returns false when NX kept the old value.
    @discardableResult
    public func set(_ key: String, _ value: some RedisArgument, ttl: Duration? = nil, onlyIfAbsent: Bool = false) async throws -> Bool {
        var arguments: [any RedisArgument] = [key, value]
        if let ttl {
            let (seconds, attoseconds) = ttl.components
            arguments += ["PX", max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))]
        }
        if onlyIfAbsent { arguments.append("NX") }
        return try await call("SET", arguments) != .null
    }

    @discardableResult
    public func del(_ keys: String...) async throws -> Int {
        try await call("DEL", keys).int ?? 0
    }

    public func exists(_ key: String) async throws -> Bool {
        try await call("EXISTS", [key]).int == 1
    }

    @discardableResult
    public func expire(_ key: String, seconds: Int) async throws -> Bool {
        try await call("EXPIRE", [key, seconds]).int == 1
    }

    /// Remaining time to live in milliseconds; nil when the key has none or does not exist.
    public func pttl(_ key: String) async throws -> Int? {
        let value = try await call("PTTL", [key]).int ?? -2
        return value >= 0 ? value : nil
    }

    public func incrBy(_ key: String, _ amount: Int) async throws -> Int {
        guard let value = try await call("INCRBY", [key, amount]).int else { throw RedisError(.unexpectedReply) }
        return value
    }

    public func incrByFloat(_ key: String, _ amount: Double) async throws -> Double {
        guard let value = try await call("INCRBYFLOAT", [key, amount]).double else { throw RedisError(.unexpectedReply) }
        return value
    }

    @discardableResult
    public func hset(_ key: String, _ fields: [String: String]) async throws -> Int {
        try await call("HSET", [key] + fields.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] as [any RedisArgument] }).int ?? 0
    }

    public func hget(_ key: String, _ field: String) async throws -> String? {
        try await call("HGET", [key, field]).string
    }

    public func hgetall(_ key: String) async throws -> [String: String] {
        let items = try await call("HGETALL", [key]).array ?? []
        var fields: [String: String] = [:]
        for pair in stride(from: 0, to: items.count - 1, by: 2) {
            if let field = items[pair].string { fields[field] = items[pair + 1].string }
        }
        return fields
    }

    public func hincrBy(_ key: String, _ field: String, _ amount: Int) async throws -> Int {
        guard let value = try await call("HINCRBY", [key, field, amount]).int else { throw RedisError(.unexpectedReply) }
        return value
    }

    @discardableResult
    public func zadd(_ key: String, _ members: [(score: Double, member: String)]) async throws -> Int {
        try await call("ZADD", [key] + members.flatMap { [$0.score, $0.member] as [any RedisArgument] }).int ?? 0
    }

    /// Members by rank, lowest score first, with their scores.
    public func zrange(_ key: String, start: Int, stop: Int) async throws -> [(member: String, score: Double)] {
        try Self.pairs(try await call("ZRANGE", [key, start, stop, "WITHSCORES"]))
    }

    public func zrangeByScore(_ key: String, min: Double, max: Double) async throws -> [(member: String, score: Double)] {
        try Self.pairs(try await call("ZRANGEBYSCORE", [key, min, max, "WITHSCORES"]))
    }

    @discardableResult
    public func zrem(_ key: String, _ members: String...) async throws -> Int {
        try await call("ZREM", [key] + members).int ?? 0
    }

    public func zcard(_ key: String) async throws -> Int {
        try await call("ZCARD", [key]).int ?? 0
    }

    public func eval(_ source: String, keys: [String] = [], arguments: [any RedisArgument] = []) async throws -> RedisValue {
        try await call("EVAL", [source, keys.count] + keys + arguments)
    }

    public func evalsha(_ sha: String, keys: [String] = [], arguments: [any RedisArgument] = []) async throws -> RedisValue {
        try await call("EVALSHA", [sha, keys.count] + keys + arguments)
    }

    public func scriptLoad(_ source: String) async throws -> String {
        guard let sha = try await call("SCRIPT", ["LOAD", source]).string else { throw RedisError(.unexpectedReply) }
        return sha
    }

    /// Runs a script by its SHA. When the server does not know it (first use, a restart, a
    /// SCRIPT FLUSH) the script is sent whole with EVAL, pipelined after a SCRIPT LOAD that
    /// gives the SHA for next time; EVAL does not depend on the script cache, so a flush
    /// between the two cannot fail the call.
    public func run(_ script: RedisScript, keys: [String] = [], arguments: [any RedisArgument] = []) async throws -> RedisValue {
        if let sha = script.sha {
            do {
                return try await evalsha(sha, keys: keys, arguments: arguments)
            } catch let error as RedisError where error.serverErrorKind == "NOSCRIPT" {}
        }
        let replies = try await pipeline([
            RedisCommand("SCRIPT", "LOAD", script.source),
            RedisCommand("EVAL", arguments: [script.source, keys.count] + keys + arguments),
        ])
        if let sha = replies[0].string { script.sha = sha }
        return try replies[1].orThrow()
    }

    private static func pairs(_ value: RedisValue) throws -> [(member: String, score: Double)] {
        let items = value.array ?? []
        return try stride(from: 0, to: items.count - 1, by: 2).map { index in
            guard let member = items[index].string, let score = items[index + 1].double else { throw RedisError(.unexpectedReply) }
            return (member, score)
        }
    }
}
