import Foundation
import HTTPTypes
import Hummingbird
import Prometheus

/// `/healthz` (the process answers), `/readyz` (every dependency answers) and `/metrics`.
public struct HealthController: Sendable {
    public let service: String
    public let checks: [ReadinessCheck]
    public let registry: PrometheusCollectorRegistry
    /// How long one dependency may take before it counts as down.
    public var timeout: Duration = .seconds(3)

    public init(service: String, checks: [ReadinessCheck], registry: PrometheusCollectorRegistry) {
        self.service = service
        self.checks = checks
        self.registry = registry
    }

    public func addRoutes(to router: Router<ConduitRequestContext>) {
        router.get("/healthz") { _, _ in
            Self.json(.ok, ["status": "ok", "service": service])
        }
        router.get("/readyz") { _, _ in
            let results = await runChecks()
            let ready = results.values.allSatisfy { $0 == "ok" }
            return Self.json(ready ? .ok : .serviceUnavailable, [
                "status": ready ? "ready" : "not_ready",
                "service": service,
                "checks": results,
            ])
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
    }

    /// Each check's outcome: `ok`, or what failed (error codes only, never configuration values).
    func runChecks() async -> [String: String] {
        await withTaskGroup(of: (String, String).self) { group in
            for check in checks {
                group.addTask {
                    do {
                        try await withTimeout(timeout) { try await check.check() }
                        return (check.name, "ok")
                    } catch {
                        return (check.name, "\(error)")
                    }
                }
            }
            var results: [String: String] = [:]
            for await (name, outcome) in group { results[name] = outcome }
            return results
        }
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

