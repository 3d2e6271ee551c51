import ConduitProtocol
import Crypto
import Foundation
import Postgres

/// The audit trail in `audit.events`, append-only, one hash chain per tenant (events without a
/// tenant — a key nobody knows — chain under the empty tenant). A row's hash is SHA-256 over
/// the previous row's hash and the row's fields; `verify` walks a chain and names the first row
/// that does not match.
struct AuditLog: Sendable {
    let postgres: PostgresClient

    struct Row: Sendable, Equatable {
        var seq: Int64
        var event: AuditEvent
        var previousHash: Data?
        var hash: Data?
    }

    struct Verification: Sendable, Equatable {
        var rows: Int
        /// The first row whose hash does not follow from the rows before it; nil when the chain holds.
        var firstInvalid: Int64?
    }

    /// Appends `event` to its tenant's chain. A replay (same request id and action) changes
    /// nothing; returns whether the row is new.
    @discardableResult
    func append(_ event: AuditEvent) async throws -> Bool {
        // Whole milliseconds, so that the time read back hashes as it was written.
        var event = event
        event.timestamp = Date(timeIntervalSince1970: (event.timestamp.timeIntervalSince1970 * 1000).rounded() / 1000)
        let chain = event.tenant ?? ""
        return try await postgres.withTransaction { session in
            // One writer per chain at a time: the previous hash is the last row's.
            try await session.query("SELECT pg_advisory_xact_lock(hashtext('audit.events:' || $1))", chain)
            let seen = try await session.query("SELECT 1 FROM audit.events WHERE request_id = $1 AND action = $2", event.requestID, event.action)
            guard seen.isEmpty else { return false }
            let previous = try await session.query(
                "SELECT row_hash FROM audit.events WHERE coalesce(tenant_id, '') = $1 ORDER BY seq DESC LIMIT 1", chain
            ).first.flatMap { try $0.decode(Data?.self, at: 0) }
            let hash = Self.hash(event, previous: previous)
            try await session.query("""
                INSERT INTO audit.events (request_id, action, tenant_id, key_id, resource, outcome, status, occurred_at, source_address, prev_hash, row_hash)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                """, event.requestID, event.action, event.tenant, event.keyID, event.resource, event.outcome, event.status, event.timestamp,
                event.sourceAddress, previous, hash)
            return true
        }
    }

    /// A tenant's rows (every tenant's when nil), newest first, after the cursor (a `seq`).
    func rows(tenant: String?, action: String?, from: Date?, to: Date?, before: Int64?, limit: Int) async throws -> [Row] {
        try await postgres.query("""
            SELECT \(Self.columns) FROM audit.events
            WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR action = $2)
              AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
              AND seq < $5
            ORDER BY seq DESC LIMIT $6
            """, tenant, action, from, to, before ?? Int64.max, limit).map(Self.row)
    }

    /// Walks a tenant's chain from its first row.
    func verify(tenant: String) async throws -> Verification {
        var previous: Data?
        var count = 0
        var after: Int64 = 0
        while true {
            let page = try await postgres.query("""
                SELECT \(Self.columns) FROM audit.events WHERE coalesce(tenant_id, '') = $1 AND seq > $2 ORDER BY seq LIMIT 1000
                """, tenant, after).map(Self.row)
            if page.isEmpty { return Verification(rows: count, firstInvalid: nil) }
            for row in page {
                count += 1
                if row.previousHash != previous || row.hash != Self.hash(row.event, previous: previous) {
                    return Verification(rows: count, firstInvalid: row.seq)
                }
                previous = row.hash
                after = row.seq
            }
        }
    }

    static let columns = """
        seq, request_id, action, tenant_id, key_id, resource, outcome, status, occurred_at, source_address, prev_hash, row_hash
        """

    static func row(_ row: PostgresRow) throws -> Row {
        let event = AuditEvent(
            requestID: try row.decode(at: 1), tenant: try row.decode(at: 3), keyID: try row.decode(at: 4), action: try row.decode(at: 2),
            resource: try row.decode(at: 5), outcome: try row.decode(at: 6), status: try row.decode(at: 7), timestamp: try row.decode(at: 8),
            sourceAddress: try row.decode(at: 9))
        return Row(seq: try row.decode(at: 0), event: event, previousHash: try row.decode(at: 10), hash: try row.decode(at: 11))
    }

    /// SHA-256 over the previous hash and the fields, each length-prefixed so that no two rows
    /// read alike. Times count in whole microseconds (what Postgres keeps).
    static func hash(_ event: AuditEvent, previous: Data?) -> Data {
        var hasher = SHA256()
        func add(_ text: String?) {
            guard let text else { return hasher.update(data: Data([0xFF])) }
            let bytes = Data(text.utf8)
            hasher.update(data: Data(String(bytes.count).utf8) + Data([0x3A]) + bytes)
        }
        add(previous.map { $0.map { String(format: "%02x", $0) }.joined() })
        add(event.requestID)
        add(event.action)
        add(event.tenant)
        add(event.keyID)
        add(event.resource)
        add(event.outcome)
        add(event.status.map(String.init))
        add(String(Int64((event.timestamp.timeIntervalSince1970 * 1_000_000).rounded())))
        add(event.sourceAddress)
        return Data(hasher.finalize())
    }
}
