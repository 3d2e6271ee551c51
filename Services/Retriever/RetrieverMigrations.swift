import Postgres

enum RetrieverMigrations {
    static let retriever = PostgresMigrator(schema: "retriever", migrations: [
        PostgresMigration(version: 1, name: "chunks", sql: """
            CREATE TABLE chunks (
                tenant_id text NOT NULL,
                collection text NOT NULL,
                chunk_id text NOT NULL,
                doc_id text NOT NULL,
                doc_version bigint NOT NULL DEFAULT 0,
                chunk_index integer NOT NULL,
                text text NOT NULL,
                start_offset integer NOT NULL,
                end_offset integer NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{}',
                embedding real[] NOT NULL,
                content_hash text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, collection, chunk_id)
            );
            CREATE INDEX chunks_document ON chunks (tenant_id, collection, doc_id);
            """),
    ])
}
