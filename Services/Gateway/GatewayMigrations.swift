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
        // Keys managed through the API: a name and a visible prefix, an expiry, a rate limit,
        // free metadata; a rotated key's old hash stays valid until `previous_valid_until`.
        // `updated_at` moves on every change, so that every replica drops what it cached of a
        // key within a poll (revocation in under a second). The old single-role `admin` of the
        // installed keys becomes `platform_admin`.
        PostgresMigration(version: 4, name: "managed api keys", sql: """
            ALTER TABLE api_keys ADD COLUMN name text;
            ALTER TABLE api_keys ADD COLUMN prefix text;
            ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
            ALTER TABLE api_keys ADD COLUMN rpm_limit integer CHECK (rpm_limit IS NULL OR rpm_limit > 0);
            ALTER TABLE api_keys ADD COLUMN metadata jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object');
            ALTER TABLE api_keys ADD COLUMN previous_hash bytea;
            ALTER TABLE api_keys ADD COLUMN previous_valid_until timestamptz;
            ALTER TABLE api_keys ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
            CREATE INDEX api_keys_previous_hash ON api_keys (previous_hash) WHERE previous_hash IS NOT NULL;
            CREATE INDEX api_keys_updated ON api_keys (updated_at);
            CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
            UPDATE api_keys SET roles = '{platform_admin}' WHERE id LIKE 'admin-%' AND roles = '{admin}';
            """),
        PostgresMigration(version: 5, name: "api key concurrency limit", sql: """
            ALTER TABLE api_keys ADD COLUMN max_concurrent integer CHECK (max_concurrent IS NULL OR max_concurrent > 0);
            """),
        // Tokens per minute and the models a key may use; a tenant's own limits, and limits per
        // model on either (`{"gpt-4o": {"rpm_limit": 10, "tpm_limit": 20000}}`). A tenant's
        // `updated_at` moves its keys' cached lookups out like a key's own change.
        PostgresMigration(version: 6, name: "token, tenant and model limits", sql: """
            ALTER TABLE api_keys ADD COLUMN tpm_limit integer CHECK (tpm_limit IS NULL OR tpm_limit > 0);
            ALTER TABLE api_keys ADD COLUMN models text[];
            ALTER TABLE api_keys ADD COLUMN model_limits jsonb CHECK (model_limits IS NULL OR jsonb_typeof(model_limits) = 'object');
            ALTER TABLE tenants ADD COLUMN rpm_limit integer CHECK (rpm_limit IS NULL OR rpm_limit > 0);
            ALTER TABLE tenants ADD COLUMN tpm_limit integer CHECK (tpm_limit IS NULL OR tpm_limit > 0);
            ALTER TABLE tenants ADD COLUMN max_concurrent integer CHECK (max_concurrent IS NULL OR max_concurrent > 0);
            ALTER TABLE tenants ADD COLUMN model_limits jsonb CHECK (model_limits IS NULL OR jsonb_typeof(model_limits) = 'object');
            ALTER TABLE tenants ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
            CREATE INDEX tenants_updated ON tenants (updated_at);
            """),
        // The directory inside a tenant: its teams and users (what keys, budgets and usage name).
        PostgresMigration(version: 7, name: "teams and users", sql: """
            CREATE TABLE teams (
                tenant_id text NOT NULL REFERENCES tenants (id),
                id text NOT NULL,
                name text NOT NULL,
                metadata jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE TABLE users (
                tenant_id text NOT NULL REFERENCES tenants (id),
                id text NOT NULL,
                name text,
                email text,
                team text,
                metadata jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, team) REFERENCES teams (tenant_id, id)
            );
            CREATE INDEX users_team ON users (tenant_id, team);
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
        // A hash chain per tenant: each row carries the hash of the tenant's previous row and its
        // own (SHA-256 over that and its fields), so an edited, removed or inserted row breaks
        // the chain from there on. Rows are never updated or deleted: a trigger refuses it.
        PostgresMigration(version: 2, name: "audit chain", sql: """
            ALTER TABLE events ADD COLUMN seq bigserial;
            ALTER TABLE events ADD COLUMN source_address text;
            ALTER TABLE events ADD COLUMN prev_hash bytea;
            ALTER TABLE events ADD COLUMN row_hash bytea;
            CREATE UNIQUE INDEX events_seq ON events (seq);
            CREATE INDEX events_tenant_seq ON events (tenant_id, seq);
            CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'audit.events is append-only'; END $$;
            CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION refuse_change();
            CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events EXECUTE FUNCTION refuse_change();
            """),
    ])
}
