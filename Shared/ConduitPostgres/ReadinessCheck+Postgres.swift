import ConduitKit
import Postgres

extension ReadinessCheck {
    public static func postgres(_ client: PostgresClient) -> ReadinessCheck {
        ReadinessCheck(name: "postgres") { try await client.query("SELECT 1") }
    }
}
