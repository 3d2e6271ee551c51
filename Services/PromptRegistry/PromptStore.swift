import ConduitKit
import ConduitProtocol
import Foundation
import Postgres
import Prompts

/// A prompt's current state: its type, its labels with their versions, its running experiment.
struct PromptState: Sendable {
    var name: String
    var type: PromptType
    var revision: Int64
    var deleted: Bool
    var labels: [LabelState]
    var experiment: HotExperiment?
    var createdAt: Date
}

struct LabelState: Sendable {
    var label: String
    var version: PromptVersion
    var protected: Bool
    var updatedAt: Date
    var updatedBy: String?
}

/// What a write did: the version it made, if any, and the prompt's state after it (what the
/// hot copy is rebuilt from).
struct PromptWrite: Sendable {
    var version: PromptVersion?
    var state: PromptState
}

enum PromptStoreError: Error {
    case notFound
    /// A new version of another type than the prompt's.
    case typeChanged(PromptType)
    case noSuchVersion(Int)
    /// The label is protected and the caller is not a tenant admin.
    case protectedLabel(String)
    case autoLabel
}

/// `prompts.*` in Postgres: prompts, immutable versions, labels and their moves. Every change
/// takes the prompt's row lock and bumps its revision in the same transaction, so the state it
/// returns is ordered with every other change's.
struct PromptStore: Sendable {
    let postgres: PostgresClient

    static let versionColumns = "v.name, v.version, v.template, v.messages, v.config, v.commit_message, v.author, v.created_at"

    /// Adds the next version (creating the prompt), moves `latest` and `labels` to it.
    func createVersion(tenant: String, name: String, body: PromptBody, config: [String: JSONValue], commitMessage: String?,
                       author: String?, labels: [String], mayMoveProtected: Bool) async throws -> PromptWrite {
        try await postgres.withTransaction { session in
            let prompt = try await session.query("""
                INSERT INTO prompts.prompts (tenant_id, name, type) VALUES ($1, $2, $3)
                ON CONFLICT (tenant_id, name) DO UPDATE SET revision = prompts.revision + 1, deleted_at = NULL
                RETURNING type
                """, tenant, name, body.type.rawValue)
            let type = PromptType(rawValue: try prompt[0].decode(String.self, at: 0)) ?? .text
            guard type == body.type else { throw PromptStoreError.typeChanged(type) }
            let (template, messages): (String?, PostgresJSON?) = switch body {
            case .text(let text): (text, nil)
            case .chat(let list): (nil, try PostgresJSON(encoding: list))
            }
            let inserted = try await session.query("""
                INSERT INTO prompts.versions AS v (tenant_id, name, version, template, messages, config, commit_message, author)
                SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4::jsonb, $5::jsonb, $6, $7 FROM prompts.versions WHERE tenant_id = $1 AND name = $2
                RETURNING \(Self.versionColumns)
                """, tenant, name, template, messages, try PostgresJSON(encoding: config), commitMessage, author)
            let version = try Self.version(inserted[0])
            for label in ["latest"] + labels.filter({ $0 != "latest" }) {
                try await Self.move(session, tenant: tenant, name: name, label: label, to: version.version, by: author,
                                    mayMoveProtected: mayMoveProtected || label == "latest", protect: nil)
            }
            return PromptWrite(version: version, state: try await Self.state(session, tenant: tenant, name: name))
        }
    }

    /// Points `label` at `version` (creating it), and protects or unprotects it when asked.
    func moveLabel(tenant: String, name: String, label: String, version: Int, protect: Bool?, by: String?, mayMoveProtected: Bool) async throws -> PromptWrite {
        try await postgres.withTransaction { session in
            try await Self.lock(session, tenant: tenant, name: name)
            try await Self.move(session, tenant: tenant, name: name, label: label, to: version, by: by, mayMoveProtected: mayMoveProtected, protect: protect)
            return PromptWrite(version: nil, state: try await Self.state(session, tenant: tenant, name: name))
        }
    }

    /// Marks the prompt deleted and drops its labels; its versions stay readable by number.
    func delete(tenant: String, name: String) async throws -> PromptWrite {
        try await postgres.withTransaction { session in
            try await Self.lock(session, tenant: tenant, name: name)
            try await session.query("UPDATE prompts.prompts SET deleted_at = now() WHERE tenant_id = $1 AND name = $2", tenant, name)
            try await session.query("DELETE FROM prompts.labels WHERE tenant_id = $1 AND name = $2", tenant, name)
            try await session.query("""
                UPDATE prompts.experiments SET status = 'concluded', concluded_at = now() WHERE tenant_id = $1 AND prompt_name = $2 AND status = 'running'
                """, tenant, name)
            return PromptWrite(version: nil, state: try await Self.state(session, tenant: tenant, name: name))
        }
    }

    /// Bumps the revision of a prompt whose experiment changed.
    func touch(tenant: String, name: String) async throws -> PromptState {
        try await postgres.withTransaction { session in
            try await Self.lock(session, tenant: tenant, name: name)
            return try await Self.state(session, tenant: tenant, name: name)
        }
    }

    func state(tenant: String, name: String) async throws -> PromptState? {
        try await postgres.withConnection { session in
            do { return try await Self.state(session, tenant: tenant, name: name) } catch PromptStoreError.notFound { return nil }
        }
    }

    func version(tenant: String, name: String, _ selector: PromptSelector) async throws -> PromptVersion? {
        let rows = switch selector {
        case .version(let number):
            try await postgres.query("""
                SELECT \(Self.versionColumns) FROM prompts.versions v WHERE v.tenant_id = $1 AND v.name = $2 AND v.version = $3
                """, tenant, name, number)
        case .label(let label):
            try await postgres.query("""
                SELECT \(Self.versionColumns) FROM prompts.labels l
                JOIN prompts.versions v ON v.tenant_id = l.tenant_id AND v.name = l.name AND v.version = l.version
                WHERE l.tenant_id = $1 AND l.name = $2 AND l.label = $3
                """, tenant, name, label)
        }
        return try rows.first.map(Self.version)
    }

    /// Every version, oldest first (deleted prompts' too).
    func versions(tenant: String, name: String) async throws -> [PromptVersion] {
        try await postgres.query("""
            SELECT \(Self.versionColumns) FROM prompts.versions v WHERE v.tenant_id = $1 AND v.name = $2 ORDER BY v.version
            """, tenant, name).map(Self.version)
    }

    /// The tenant's live prompts by name, with their newest version number and labels.
    func list(tenant: String, prefix: String?, limit: Int) async throws -> [(name: String, type: String, latest: Int, labels: [String: Int])] {
        let rows = try await postgres.query("""
            SELECT p.name, p.type, coalesce((SELECT max(version) FROM prompts.versions v WHERE v.tenant_id = p.tenant_id AND v.name = p.name), 0),
                   coalesce((SELECT jsonb_object_agg(label, version) FROM prompts.labels l WHERE l.tenant_id = p.tenant_id AND l.name = p.name), '{}')
            FROM prompts.prompts p
            WHERE p.tenant_id = $1 AND p.deleted_at IS NULL AND ($2::text IS NULL OR starts_with(p.name, $2))
            ORDER BY p.name LIMIT $3
            """, tenant, prefix, limit)
        return try rows.map { row in
            (try row.decode(String.self, at: 0), try row.decode(String.self, at: 1), try row.decode(Int.self, at: 2),
             try row.decode(PostgresJSON.self, at: 3).decode([String: Int].self))
        }
    }

    /// The label's moves, newest first.
    func moves(tenant: String, name: String, limit: Int) async throws -> [JSONValue] {
        try await postgres.query("""
            SELECT label, from_version, to_version, moved_by, moved_at FROM prompts.label_moves
            WHERE tenant_id = $1 AND name = $2 ORDER BY id DESC LIMIT $3
            """, tenant, name, limit).map { row in
            .object([
                "label": .string(try row.decode(String.self, at: 0)),
                "from_version": try row.decode(Int?.self, at: 1).map { .number(Double($0)) } ?? .null,
                "to_version": .number(Double(try row.decode(Int.self, at: 2))),
                "moved_by": try row.decode(String?.self, at: 3).map(JSONValue.string) ?? .null,
                "moved_at": .string(ISO8601DateFormatter().string(from: try row.decode(Date.self, at: 4))),
            ])
        }
    }

    // MARK: inside a transaction

    static func lock(_ session: PostgresSession, tenant: String, name: String) async throws {
        let rows = try await session.query("""
            UPDATE prompts.prompts SET revision = revision + 1 WHERE tenant_id = $1 AND name = $2 RETURNING 1
            """, tenant, name)
        guard rows.count == 1 else { throw PromptStoreError.notFound }
    }

    static func move(_ session: PostgresSession, tenant: String, name: String, label: String, to version: Int, by: String?,
                     mayMoveProtected: Bool, protect: Bool?) async throws {
        let exists = try await session.query("SELECT 1 FROM prompts.versions WHERE tenant_id = $1 AND name = $2 AND version = $3", tenant, name, version)
        guard exists.count == 1 else { throw PromptStoreError.noSuchVersion(version) }
        let current = try await session.query("""
            SELECT version, protected FROM prompts.labels WHERE tenant_id = $1 AND name = $2 AND label = $3 FOR UPDATE
            """, tenant, name, label)
        let from = try current.first?.decode(Int.self, at: 0)
        let wasProtected = try current.first?.decode(Bool.self, at: 1) ?? false
        if (wasProtected || protect != nil) && !mayMoveProtected { throw PromptStoreError.protectedLabel(label) }
        try await session.query("""
            INSERT INTO prompts.labels (tenant_id, name, label, version, protected, updated_by) VALUES ($1, $2, $3, $4, coalesce($5, false), $6)
            ON CONFLICT (tenant_id, name, label) DO UPDATE
            SET version = excluded.version, protected = coalesce($5, labels.protected), updated_at = now(), updated_by = excluded.updated_by
            """, tenant, name, label, version, protect, by)
        if from != version {
            try await session.query("""
                INSERT INTO prompts.label_moves (tenant_id, name, label, from_version, to_version, moved_by) VALUES ($1, $2, $3, $4, $5, $6)
                """, tenant, name, label, from, version, by)
        }
    }

    static func state(_ session: PostgresSession, tenant: String, name: String) async throws -> PromptState {
        let prompt = try await session.query("""
            SELECT type, revision, deleted_at IS NOT NULL, created_at FROM prompts.prompts WHERE tenant_id = $1 AND name = $2
            """, tenant, name)
        guard let row = prompt.first else { throw PromptStoreError.notFound }
        let labels = try await session.query("""
            SELECT l.label, l.protected, l.updated_at, l.updated_by, \(versionColumns) FROM prompts.labels l
            JOIN prompts.versions v ON v.tenant_id = l.tenant_id AND v.name = l.name AND v.version = l.version
            WHERE l.tenant_id = $1 AND l.name = $2 ORDER BY l.label
            """, tenant, name).map { row in
            LabelState(label: try row.decode(String.self, at: 0), version: try version(row, from: 4), protected: try row.decode(Bool.self, at: 1),
                       updatedAt: try row.decode(Date.self, at: 2), updatedBy: try row.decode(String?.self, at: 3))
        }
        let experiment = try await session.query("""
            SELECT id, label, subject, variants FROM prompts.experiments WHERE tenant_id = $1 AND prompt_name = $2 AND status = 'running'
            """, tenant, name).first.map { row in
            HotExperiment(id: try row.decode(String.self, at: 0), label: try row.decode(String.self, at: 1), subject: try row.decode(String.self, at: 2),
                          variants: try row.decode(PostgresJSON.self, at: 3).decode([ExperimentAssignment.Variant].self))
        }
        return PromptState(name: name, type: PromptType(rawValue: try row.decode(String.self, at: 0)) ?? .text, revision: try row.decode(Int64.self, at: 1),
                           deleted: try row.decode(Bool.self, at: 2), labels: labels, experiment: experiment, createdAt: try row.decode(Date.self, at: 3))
    }

    static func version(_ row: PostgresRow) throws -> PromptVersion { try version(row, from: 0) }

    static func version(_ row: PostgresRow, from first: Int) throws -> PromptVersion {
        let body: PromptBody
        if let template = try row.decode(String?.self, at: first + 2) {
            body = .text(template)
        } else {
            body = .chat(try row.decode(PostgresJSON.self, at: first + 3).decode([PromptMessage].self))
        }
        return PromptVersion(
            name: try row.decode(String.self, at: first), version: try row.decode(Int.self, at: first + 1), body: body,
            config: try row.decode(PostgresJSON.self, at: first + 4).decode([String: JSONValue].self),
            commitMessage: try row.decode(String?.self, at: first + 5), author: try row.decode(String?.self, at: first + 6),
            createdAt: try row.decode(Date.self, at: first + 7))
    }
}
