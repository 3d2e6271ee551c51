import ConduitKit
import ConduitProtocol
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Postgres
import Testing
import TestSupport

/// The audit trail in the test stack's Postgres: append-only, a hash chain per tenant that a
/// replay leaves alone and a tampered row breaks; and the gateway as it runs, its audit events
/// going over the test stack's broker into the trail.
@Suite(.timeLimit(.minutes(3)))
struct AuditLogTests {
    let postgres = PostgresClient(configuration: .init(port: TestEnvironment.postgresPort, user: "conduit", database: "conduit"), logger: Logger(label: "test"))

    func migrated() async throws -> AuditLog {
        _ = try await GatewayMigrations.audit.migrate(postgres, logger: Logger(label: "test"))
        return AuditLog(postgres: postgres)
    }

    static func event(_ tenant: String, _ index: Int) -> AuditEvent {
        AuditEvent(requestID: "\(tenant)-r\(index)", tenant: tenant, keyID: "k", action: "key.create", resource: "POST /v1/keys", outcome: "allowed",
                   status: 201, timestamp: Date(), sourceAddress: "127.0.0.1")
    }

    @Test func theChainVerifiesReplaysChangeNothingAndATamperedRowIsFound() async throws {
        let log = try await migrated()
        let tenant = TestEnvironment.uniqueName("audit")
        for index in 0..<5 { #expect(try await log.append(Self.event(tenant, index))) }
        #expect(try await !log.append(Self.event(tenant, 2)))
        #expect(try await log.verify(tenant: tenant) == .init(rows: 5, firstInvalid: nil))
        let rows = try await log.rows(tenant: tenant, action: nil, from: nil, to: nil, before: nil, limit: 10)
        #expect(rows.map(\.event.requestID) == [4, 3, 2, 1, 0].map { "\(tenant)-r\($0)" })
        #expect(rows[0].previousHash == rows[1].hash)

        // Rows cannot be changed …
        await #expect(throws: (any Error).self) {
            try await postgres.query("UPDATE audit.events SET outcome = 'denied' WHERE tenant_id = $1", tenant)
        }
        await #expect(throws: (any Error).self) { try await postgres.query("DELETE FROM audit.events WHERE tenant_id = $1", tenant) }
        // … unless someone with the table's ownership turns the guard off: the chain shows it.
        try await postgres.withTransaction { session in
            try await session.query("ALTER TABLE audit.events DISABLE TRIGGER events_append_only")
            try await session.query("UPDATE audit.events SET outcome = 'denied' WHERE tenant_id = $1 AND request_id = $1 || '-r2'", tenant)
            try await session.query("ALTER TABLE audit.events ENABLE TRIGGER events_append_only")
        }
        let tampered = try await log.verify(tenant: tenant)
        #expect(tampered.firstInvalid == rows[2].seq)
    }

    @Test func theGatewaysAuditEventsReachTheTrailAndAreReadByTenant() async throws {
        let tenant = TestEnvironment.uniqueName("trail")
        let key = APIKeyAuthenticator.generateKey()
        var values = ProcessInfo.processInfo.environment
        values["CONDUIT_ADMIN_KEY"] = key
        values["CONDUIT_ADMIN_TENANT"] = tenant
        values["CONDUIT_GATEWAY_PORT"] = "0"
        values["CONDUIT_INTERNAL_KEY"] = TestIdentity.key
        values["CONDUIT_GATEWAY_AUDIT_TOPIC"] = TestEnvironment.uniqueName("audit-topic")
        values["CONDUIT_GATEWAY_AUDIT_GROUP"] = TestEnvironment.uniqueName("audit-group")
        let configuration = try ServiceConfiguration(service: .gateway, environment: ConduitEnvironment(values))
        try await buildApplication(configuration: configuration, logger: Logger(label: "gateway-test")).test(.live) { client in
            func call(_ method: HTTPRequest.Method, _ uri: String, key: String, _ body: String? = nil) async throws -> TestResponse {
                try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
                                         body: body.map { ByteBuffer(string: $0) })
            }
            #expect(try await call(.post, "/v1/keys", key: key, #"{"role":"viewer"}"#).status == .created)
            #expect(try await call(.post, "/v1/search", key: "cdt-nobody", #"{"collection":"c","query":"x"}"#).status == .unauthorized)
            var listed: [String] = []
            let arrived = try await eventually(within: .seconds(90)) {
                // A platform admin reads every tenant's trail unless it names one.
                let page = JSONValue.parse(Array(try await call(.get, "/v1/audit?tenant=\(tenant)", key: key).body.readableBytesView))
                listed = page?["data"]?.arrayValue?.compactMap { $0["action"]?.stringValue } ?? []
                return listed.contains("key.create")
            }
            #expect(arrived, "\(listed)")
            // The failed key has no tenant: it is not in this tenant's trail; the chain holds.
            #expect(!listed.contains("auth.failed"))
            let verified = JSONValue.parse(Array(try await call(.get, "/v1/audit/verify", key: key).body.readableBytesView))
            #expect(verified?["valid"] == true && verified?["tenant"]?.stringValue == tenant)
        }
    }
}
