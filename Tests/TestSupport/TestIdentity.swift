import ConduitKit
import Foundation
import HTTPTypes

/// A caller as the gateway would sign it, for tests that call an internal service directly.
/// The key is the test stack's (`CONDUIT_INTERNAL_KEY`, which `make test` generates) so that
/// service processes started by tests accept it; in-process tests get the same key through
/// `TestIdentity.environment`.
public enum TestIdentity {
    public static let key = ProcessInfo.processInfo.environment["CONDUIT_INTERNAL_KEY"] ?? "conduit-test-internal-key-0123456789abcdef"

    public static var keyring: InternalKeyring { try! InternalKeyring(current: key) }

    /// The settings a service built in a test needs to accept signed identities.
    public static var environment: [String: String] { ["CONDUIT_INTERNAL_KEY": key] }

    /// `X-Request-Id` and `X-Conduit-Identity` for a request of `tenant`.
    public static func headers(tenant: String, keyID: String = "test-key", roles: [String] = ["admin"], chatDefaults: String? = nil,
                               models: [String]? = nil, requestID: String = UUID().uuidString.lowercased()) -> [(name: String, value: String)] {
        var identity = CallerIdentity(tenant: tenant, keyID: keyID, roles: roles, chatDefaults: chatDefaults)
        identity.models = models
        return [(ConduitHeader.requestID, requestID), (ConduitHeader.identity, try! keyring.sign(identity, requestID: requestID))]
    }

    /// The same headers as `HTTPFields`, for HummingbirdTesting clients.
    public static func fields(tenant: String, keyID: String = "test-key", roles: [String] = ["admin"], chatDefaults: String? = nil,
                              models: [String]? = nil, requestID: String = UUID().uuidString.lowercased()) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers(tenant: tenant, keyID: keyID, roles: roles, chatDefaults: chatDefaults, models: models, requestID: requestID) {
            fields[HTTPField.Name(name)!] = value
        }
        return fields
    }
}
