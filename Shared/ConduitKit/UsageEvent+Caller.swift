import ConduitProtocol

extension UsageEvent {
    /// Bills the caller: its key, the key's team and tags, and the user — the key's when it has
    /// one (a caller cannot name another user to escape a user budget), else the request's `user`.
    public mutating func attribute(to caller: CallerIdentity, user requestUser: String?) {
        keyID = caller.keyID
        team = caller.team
        user = caller.user ?? requestUser.flatMap { $0.isEmpty ? nil : $0 }
        tags = caller.tags.isEmpty ? nil : caller.tags
    }
}
