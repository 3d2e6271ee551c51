import Postgres

enum PromptMigrations {
    static let prompts = PostgresMigrator(schema: "prompts", migrations: [
        PostgresMigration(version: 1, name: "templates and versions", sql: """
            CREATE TABLE templates (
                tenant_id text NOT NULL,
                name text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, name)
            );
            CREATE TABLE template_versions (
                tenant_id text NOT NULL,
                name text NOT NULL,
                version integer NOT NULL,
                body text NOT NULL,
                variables jsonb NOT NULL DEFAULT '[]',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, name, version),
                FOREIGN KEY (tenant_id, name) REFERENCES templates (tenant_id, name)
            );
            CREATE TABLE labels (
                tenant_id text NOT NULL,
                name text NOT NULL,
                label text NOT NULL,
                version integer NOT NULL,
                PRIMARY KEY (tenant_id, name, label),
                FOREIGN KEY (tenant_id, name, version) REFERENCES template_versions (tenant_id, name, version)
            );
            """),
        // The first tables were never written (no route served them): replaced by the
        // registry's real shape.
        PostgresMigration(version: 2, name: "prompts, immutable versions, labels, experiments, outcomes, feedback", sql: """
            DROP TABLE labels;
            DROP TABLE template_versions;
            DROP TABLE templates;
            CREATE TABLE prompts (
                tenant_id text NOT NULL,
                name text NOT NULL,
                type text NOT NULL CHECK (type IN ('text', 'chat')),
                -- Bumped by every change under the prompt's row lock: the hot copy keeps the newest.
                revision bigint NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT now(),
                deleted_at timestamptz,
                PRIMARY KEY (tenant_id, name)
            );
            CREATE TABLE versions (
                tenant_id text NOT NULL,
                name text NOT NULL,
                version integer NOT NULL CHECK (version > 0),
                template text,
                messages jsonb,
                config jsonb NOT NULL DEFAULT '{}',
                commit_message text,
                author text,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, name, version),
                FOREIGN KEY (tenant_id, name) REFERENCES prompts (tenant_id, name),
                CHECK ((template IS NULL) <> (messages IS NULL))
            );
            -- Versions are immutable: not even the registry's own role may change one.
            CREATE FUNCTION refuse_version_update() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'prompt versions are immutable';
            END $$;
            CREATE TRIGGER versions_immutable BEFORE UPDATE ON versions FOR EACH ROW EXECUTE FUNCTION refuse_version_update();
            CREATE TABLE labels (
                tenant_id text NOT NULL,
                name text NOT NULL,
                label text NOT NULL,
                version integer NOT NULL,
                protected boolean NOT NULL DEFAULT false,
                updated_at timestamptz NOT NULL DEFAULT now(),
                updated_by text,
                PRIMARY KEY (tenant_id, name, label),
                FOREIGN KEY (tenant_id, name, version) REFERENCES versions (tenant_id, name, version)
            );
            -- Every label move: promotions and rollbacks have a history.
            CREATE TABLE label_moves (
                id bigserial PRIMARY KEY,
                tenant_id text NOT NULL,
                name text NOT NULL,
                label text NOT NULL,
                from_version integer,
                to_version integer NOT NULL,
                moved_by text,
                moved_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX label_moves_prompt ON label_moves (tenant_id, name, id);
            CREATE TABLE experiments (
                id text PRIMARY KEY,
                tenant_id text NOT NULL,
                prompt_name text NOT NULL,
                name text NOT NULL,
                label text NOT NULL,
                subject text NOT NULL CHECK (subject IN ('user', 'session')),
                metric text NOT NULL,
                variants jsonb NOT NULL,
                status text NOT NULL CHECK (status IN ('running', 'concluded')),
                winner text,
                created_at timestamptz NOT NULL DEFAULT now(),
                concluded_at timestamptz,
                FOREIGN KEY (tenant_id, prompt_name) REFERENCES prompts (tenant_id, name)
            );
            -- One running experiment per prompt.
            CREATE UNIQUE INDEX experiments_running ON experiments (tenant_id, prompt_name) WHERE status = 'running';
            -- One row per request an experiment served, from its usage event.
            CREATE TABLE outcomes (
                tenant_id text NOT NULL,
                request_id text NOT NULL,
                experiment_id text NOT NULL,
                variant text NOT NULL,
                version integer,
                latency_ms double precision,
                cost_usd double precision,
                tokens integer,
                failed boolean NOT NULL,
                occurred_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, request_id)
            );
            CREATE INDEX outcomes_experiment ON outcomes (experiment_id, variant);
            CREATE TABLE feedback (
                tenant_id text NOT NULL,
                request_id text NOT NULL,
                score double precision,
                thumbs_up boolean,
                comment text,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, request_id)
            );
            """),
    ])
}
