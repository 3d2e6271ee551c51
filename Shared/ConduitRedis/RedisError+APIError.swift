import ConduitKit
import Redis

extension RedisError: APIErrorConvertible {
    /// A full Redis queue is back-pressure, not a fault: the caller may retry shortly.
    public var apiError: APIError? {
        guard code == .overloaded else { return nil }
        var overloaded = APIError.serviceUnavailable("The server is overloaded; try again shortly.")
        overloaded.retryAfterSeconds = 1
        return overloaded
    }
}
