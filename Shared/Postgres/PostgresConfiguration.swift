/// Where and how the Postgres client connects.
public struct PostgresConfiguration: Sendable {
    /// Host name or IP address of the server. Default: `127.0.0.1`.
    public var host: String
    /// TCP port. Default: `55432` (the local stack).
    public var port: Int
    /// Role to connect as. Default: `conduit`.
    public var user: String
    /// Password, if the server asks for one. Never logged.
    public var password: String?
    /// Database name. Default: `conduit`.
    public var database: String
    /// Most connections the pool keeps open. Default: 8.
    public var maxConnections: Int
    /// How long one connection attempt may take, in seconds. Default: 5.
    public var connectTimeoutSeconds: Int
    /// Name shown in `pg_stat_activity`.
    public var applicationName: String
    /// How long the server lets one statement run before cancelling it, in milliseconds.
    /// Default: 30,000 (migrations and bulk loads fit; a stuck query does not hold a
    /// connection for ever).
    public var statementTimeoutMilliseconds: Int = 30_000
    /// TCP keep-alive: idle seconds before the first probe, so a connection to a vanished
    /// server is noticed. Default: 30.
    public var keepaliveIdleSeconds: Int = 30

    public init(
        host: String = "127.0.0.1",
        port: Int = 55432,
        user: String = "conduit",
        password: String? = nil,
        database: String = "conduit",
        maxConnections: Int = 8,
        connectTimeoutSeconds: Int = 5,
        applicationName: String = "conduit"
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.maxConnections = max(1, maxConnections)
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.applicationName = applicationName
    }

    /// libpq keyword/value pairs. Sessions always speak UTC and ISO dates so text decoding is stable.
    var connectionParameters: [(String, String)] {
        var parameters = [
            ("host", host),
            ("port", String(port)),
            ("user", user),
            ("dbname", database),
            ("connect_timeout", String(connectTimeoutSeconds)),
            ("application_name", applicationName),
            ("client_encoding", "UTF8"),
            ("options", "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c statement_timeout=\(statementTimeoutMilliseconds)"),
            ("keepalives", "1"),
            ("keepalives_idle", String(keepaliveIdleSeconds)),
            ("keepalives_interval", "10"),
            ("keepalives_count", "3"),
        ]
        if let password { parameters.append(("password", password)) }
        return parameters
    }
}
