import ConduitKit
import ConduitProtocol
import HTTPTypes

extension APIError {
    /// 503 `budgets_unavailable`: the request cannot be checked against its budgets now.
    static func budgetsUnavailable(_ why: String) -> APIError {
        APIError(status: .serviceUnavailable, type: .server, message: "Budgets cannot be checked right now (\(why)); try again shortly.",
                 code: "budgets_unavailable")
    }
}
