import Foundation

/// How often and how long to wait before trying a deployment again.
public struct RetryPolicy: Sendable, Hashable {
    /// Retries per deployment after the first attempt. Default 2.
    public var maxRetries: Int
    /// The first backoff; each retry doubles it. Default 250 ms.
    public var baseDelay: Duration
    /// No backoff is longer. Default 8 s.
    public var maxDelay: Duration
    /// A `Retry-After` longer than this moves on to the next deployment instead of waiting. Default 20 s.
    public var maxRetryAfter: Duration

    public init(maxRetries: Int = 2, baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(8), maxRetryAfter: Duration = .seconds(20)) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// The wait before retry number `retry` (1-based) after `error`, or nil to stop retrying this
    /// deployment. A provider's `Retry-After` wins over the backoff; the backoff is "full jitter"
    /// (uniform between zero and the exponential cap), so clients that failed together do not
    /// come back together.
    public func delay(beforeRetry retry: Int, after error: ProviderError, random: Double = Double.random(in: 0..<1)) -> Duration? {
        guard error.isRetryable, retry <= maxRetries else { return nil }
        if let retryAfter = error.retryAfter {
            return retryAfter <= maxRetryAfter ? retryAfter : nil
        }
        let cap = min(maxDelay, baseDelay * (1 << min(retry - 1, 20)))
        return cap * random
    }

    /// `Retry-After` as delay-seconds or an HTTP date.
    public static func retryAfter(_ header: String?, now: Date = Date()) -> Duration? {
        guard let header = header?.trimmingCharacters(in: .whitespaces), !header.isEmpty else { return nil }
        if let seconds = Double(header), seconds >= 0 { return .milliseconds(Int(seconds * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: header) else { return nil }
        return .milliseconds(max(0, Int(date.timeIntervalSince(now) * 1000)))
    }
}
