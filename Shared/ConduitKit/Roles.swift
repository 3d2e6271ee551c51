import ConduitProtocol
import HTTPTypes

/// The roles a key (or, later, a token) carries, and what each may do. A key has one role; the
/// signed identity carries it to the internal services, which check what they own.
///
/// | permission | platform_admin | admin | developer | viewer | service |
/// |---|---|---|---|---|---|
/// | `manageTenants` (create tenants, act in any tenant) | ✓ | | | | |
/// | `manageKeys` (keys of the tenant) | ✓ | ✓ | | | |
/// | `manageBudgets` | ✓ | ✓ | | | |
/// | `infer` (chat, embeddings, models) | ✓ | ✓ | ✓ | | ✓ |
/// | `writeDocuments` (index, delete documents; sessions, cache purge) | ✓ | ✓ | ✓ | | |
/// | `search` | ✓ | ✓ | ✓ | ✓ | |
/// | `readUsage` (usage, budgets) | ✓ | ✓ | ✓ | ✓ | |
/// | `readAudit` (the tenant's audit trail) | ✓ | ✓ | | ✓ | |
/// | `readPrompts` (prompts, versions, experiments' results) | ✓ | ✓ | ✓ | ✓ | |
/// | `writePrompts` (new versions, unprotected labels, experiments) | ✓ | ✓ | ✓ | | |
/// | `readFlows` (flows, their runs) | ✓ | ✓ | ✓ | ✓ | |
/// | `writeFlows` (upload flow versions) | ✓ | ✓ | ✓ | | |
/// | `runFlows` (start and cancel runs) | ✓ | ✓ | ✓ | | ✓ |
public enum Role: String, Sendable, CaseIterable, Codable {
    case platformAdmin = "platform_admin"
    case admin, developer, viewer, service

    public func allows(_ permission: Permission) -> Bool {
        switch (self, permission) {
        case (.platformAdmin, _): true
        case (.admin, .manageTenants): false
        case (.admin, _): true
        case (.developer, .infer), (.developer, .writeDocuments), (.developer, .search), (.developer, .readUsage): true
        case (.developer, .readPrompts), (.developer, .writePrompts): true
        case (.developer, .readFlows), (.developer, .writeFlows), (.developer, .runFlows): true
        case (.viewer, .search), (.viewer, .readUsage), (.viewer, .readAudit), (.viewer, .readPrompts), (.viewer, .readFlows): true
        case (.service, .infer), (.service, .runFlows): true
        default: false
        }
    }
}

public enum Permission: String, Sendable, CaseIterable {
    case manageTenants, manageKeys, manageBudgets, infer, writeDocuments, search, readUsage, readAudit
    /// Prompts, versions, experiments: read them; write versions, move unprotected labels, run
    /// experiments. Protected labels move only with `manageKeys` (tenant admins).
    case readPrompts, writePrompts
    /// Flows: read them and their runs; upload versions; start and cancel runs.
    case readFlows, writeFlows, runFlows
}

extension CallerIdentity {
    /// Whether any of the caller's roles allows `permission`. Unknown role names allow nothing.
    public func can(_ permission: Permission) -> Bool {
        roles.contains { Role(rawValue: $0)?.allows(permission) ?? false }
    }
}

extension ConduitRequestContext {
    /// The caller, when one of its roles allows `permission`; a 403 `insufficient_role` otherwise.
    @discardableResult
    public func require(_ permission: Permission, _ message: @autoclosure () -> String) throws -> CallerIdentity {
        let caller = try caller()
        guard caller.can(permission) else {
            throw APIError(status: .forbidden, type: .permission, message: message(), code: "insufficient_role")
        }
        return caller
    }
}
