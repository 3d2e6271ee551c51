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
    ])
}
