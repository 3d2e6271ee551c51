import SemanticCache

/// Where the semantic cache keeps answers: `SemanticCache` (vector indexes in memory over
/// entries in Redis); an application test keeps them in a dictionary.
protocol AnswerIndex: Sendable {
    func lookup(tenant: String, context: String, question: String, vector: [Float], threshold: Double) async throws -> SemanticCache.Lookup
    func store(tenant: String, context: String, question: String, vector: [Float], payload: [UInt8]) async throws
    /// Removes the tenant's entries; returns how many.
    func purge(tenant: String) async throws -> Int
}

extension SemanticCache: AnswerIndex {}
