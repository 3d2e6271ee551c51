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
    ])
}
