import ConduitKit
import Foundation
import Testing

/// Engine work runs on the executor's own threads, not on the cooperative pool.
struct EngineExecutorTests {
    @Test func workRunsOnTheExecutorsThreadsAndErrorsComeBack() async throws {
        let engine = EngineExecutor(threads: 2)
        let names = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await engine.run { Thread.current.name ?? "" } } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        // NIOThreadPool names its threads `TP-#n`; the cooperative pool's are unnamed.
        #expect(!names.isEmpty && names.allSatisfy { $0.hasPrefix("TP-") }, "\(names)")
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await engine.run { throw Boom() } }
    }
}
