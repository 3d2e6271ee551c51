import ConduitProtocol

/// API keys by environment variable name, read once at start. Keys never reach logs or errors.
public struct APIKeys: Sendable {
    private let values: [String: String]

    public init(environment: [String: String]) {
        values = environment.filter { !$0.value.isEmpty }
    }

    public func key(for deployment: Deployment) -> String? {
        deployment.apiKeyVariable.flatMap { values[$0] }
    }

    public func isConfigured(_ deployment: Deployment) -> Bool {
        deployment.apiKeyVariable == nil || key(for: deployment) != nil
    }
}
