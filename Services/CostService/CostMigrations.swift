import Postgres

enum CostMigrations {
    static let cost = PostgresMigrator(schema: "cost", migrations: [
        PostgresMigration(version: 1, name: "budgets and ledger", sql: """
            CREATE TABLE budgets (
                id text PRIMARY KEY,
                tenant_id text NOT NULL,
                scope text NOT NULL,
                period text NOT NULL,
                limit_usd numeric(14, 6) NOT NULL CHECK (limit_usd >= 0),
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE ledger (
                request_id text PRIMARY KEY,
                tenant_id text NOT NULL,
                key_id text,
                kind text NOT NULL,
                model text NOT NULL,
                provider text,
                prompt_tokens integer NOT NULL,
                completion_tokens integer NOT NULL,
                cost_usd numeric(14, 8) NOT NULL DEFAULT 0,
                occurred_at timestamptz NOT NULL
            );
            CREATE INDEX ledger_tenant_time ON ledger (tenant_id, occurred_at);
            """),
        // The first ledger was keyed by request id, which is not unique (a request can cost a
        // rewrite, a summary and the answer) and is the caller's to choose; nothing wrote it.
        PostgresMigration(version: 2, name: "usage ledger by event id, daily rollups", sql: """
            DROP TABLE ledger;
            CREATE TABLE usage_ledger (
                event_id text PRIMARY KEY,
                request_id text NOT NULL,
                tenant_id text NOT NULL,
                key_id text,
                kind text NOT NULL,
                model text NOT NULL,
                served_model text,
                deployment text,
                provider text,
                prompt_tokens integer NOT NULL CHECK (prompt_tokens >= 0),
                completion_tokens integer NOT NULL CHECK (completion_tokens >= 0),
                cached_tokens integer NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
                reasoning_tokens integer NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
                cost_usd numeric(20, 10) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
                cache_hit boolean NOT NULL DEFAULT false,
                latency_ms integer,
                ttft_ms integer,
                status text NOT NULL,
                occurred_at timestamptz NOT NULL,
                recorded_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX usage_ledger_tenant_time ON usage_ledger (tenant_id, occurred_at);
            CREATE INDEX usage_ledger_request ON usage_ledger (request_id);
            CREATE TABLE usage_daily (
                tenant_id text NOT NULL,
                key_id text NOT NULL,
                model text NOT NULL,
                day date NOT NULL,
                requests bigint NOT NULL,
                prompt_tokens bigint NOT NULL,
                completion_tokens bigint NOT NULL,
                cached_tokens bigint NOT NULL,
                reasoning_tokens bigint NOT NULL,
                cost_usd numeric(24, 10) NOT NULL,
                PRIMARY KEY (tenant_id, key_id, model, day)
            );
            """),
        PostgresMigration(version: 3, name: "estimated usage, cost saved by the cache", sql: """
            ALTER TABLE usage_ledger ADD COLUMN usage_estimated boolean NOT NULL DEFAULT false;
            ALTER TABLE usage_ledger ADD COLUMN saved_usd numeric(20, 10) NOT NULL DEFAULT 0 CHECK (saved_usd >= 0);
            ALTER TABLE usage_daily ADD COLUMN saved_usd numeric(24, 10) NOT NULL DEFAULT 0;
            ALTER TABLE usage_daily ADD COLUMN estimated_requests bigint NOT NULL DEFAULT 0;
            """),
        // The first budgets table had one free-text scope and nothing wrote it.
        PostgresMigration(version: 4, name: "budgets with scopes, periods in a time zone, alerts; who spent", sql: """
            DROP TABLE budgets;
            CREATE TABLE budgets (
                id text PRIMARY KEY,
                tenant_id text NOT NULL,
                name text,
                team text,
                user_id text,
                key_id text,
                tag text,
                model text,
                period text NOT NULL CHECK (period IN ('day', 'week', 'month', 'total')),
                time_zone text NOT NULL,
                limit_usd double precision NOT NULL CHECK (limit_usd >= 0),
                alert_thresholds double precision[] NOT NULL,
                webhook_url text,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX budgets_tenant ON budgets (tenant_id);
            CREATE TABLE budget_alerts (
                budget_id text NOT NULL,
                window_label text NOT NULL,
                threshold double precision NOT NULL,
                spent_usd double precision NOT NULL,
                raised_at timestamptz NOT NULL DEFAULT now(),
                delivered_at timestamptz,
                PRIMARY KEY (budget_id, window_label, threshold)
            );
            ALTER TABLE usage_ledger ADD COLUMN team text;
            ALTER TABLE usage_ledger ADD COLUMN user_id text;
            ALTER TABLE usage_ledger ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
            CREATE INDEX usage_ledger_tenant_time_cost ON usage_ledger (tenant_id, occurred_at) INCLUDE (cost_usd, key_id, model, team, user_id);
            """),
    ])
}
