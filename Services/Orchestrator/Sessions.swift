import ConduitKit
import ConduitProtocol

/// What every session store shares: the id rule and the summary's marker.
enum Sessions {
    /// The `name` of the system message that holds the summary of older turns.
    static let summaryName = "conduit_summary"

    /// `Identifier.session`. The tenant (`Identifier.tenant`) has no `:`, so the key splits at
    /// its first `:` after `sess:` and no two (tenant, session) pairs share a key.
    static func validate(_ id: String, param: String) throws {
        guard Identifier.session.isValid(id) else {
            throw APIError.invalidRequest("A session id has \(Identifier.session.rule).", param: param)
        }
    }
}
