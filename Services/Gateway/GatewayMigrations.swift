import Postgres

/// The gateway owns two schemas: `gateway` (tenants, keys) and `audit` (what its audit sink writes).
enum GatewayMigrations {
    static let gateway = PostgresMigrator(schema: "gateway", migrations: [
        PostgresMigration(version: 1, name: "tenants and api keys", sql: """
            CREATE TABLE tenants (
                id text PRIMARY KEY,
                name text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE api_keys (
                id text PRIMARY KEY,
                tenant_id text NOT NULL REFERENCES tenants(id),
                key_hash bytea NOT NULL UNIQUE,
                roles text[] NOT NULL DEFAULT '{}',
                created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz
            );
            """),
        // Defaults for the `conduit` object of the key's chat requests, e.g. {"rag":{"collection":"handbook"}}.
        PostgresMigration(version: 2, name: "api key chat defaults", sql: """
            ALTER TABLE api_keys ADD COLUMN chat_defaults jsonb
                CHECK (chat_defaults IS NULL OR jsonb_typeof(chat_defaults) = 'object');
            """),
        // Who a key's spend belongs to: usage reports and budgets group by them. Set in SQL
        // until the admin API manages keys.
        PostgresMigration(version: 3, name: "api key team, user and tags", sql: """
            ALTER TABLE api_keys ADD COLUMN team text CHECK (team IS NULL OR team !~ '[\\n\\r]');
            ALTER TABLE api_keys ADD COLUMN user_id text CHECK (user_id IS NULL OR user_id !~ '[\\n\\r]');
            ALTER TABLE api_keys ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
                CHECK (array_to_string(tags, '') !~ '[,\\n\\r]' AND '' <> ALL (tags));
            """),
    ])

    static let audit = PostgresMigrator(schema: "audit", migrations: [
        PostgresMigration(version: 1, name: "audit events", sql: """
            CREATE TABLE events (
                request_id text NOT NULL,
                action text NOT NULL,
                tenant_id text,
                key_id text,
                resource text,
                outcome text NOT NULL,
                status integer,
                occurred_at timestamptz NOT NULL,
                PRIMARY KEY (request_id, action)
            );
            CREATE INDEX events_tenant_time ON events (tenant_id, occurred_at);
            """),
    ])
}
