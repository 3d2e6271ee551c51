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
        // Collections with their index parameters; documents with their version and the Kafka
        // position that set it (a replayed, older event is recognised and skipped; deletes keep
        // the row as a tombstone for that reason); chunks with a row id that never changes;
        // vectors as raw float32 bytes. Nothing was stored by version 1 outside development,
        // so its table is replaced.
        PostgresMigration(version: 2, name: "collections, documents, versioned chunks", sql: """
            DROP TABLE chunks;
            CREATE TABLE collections (
                tenant_id text NOT NULL,
                name text NOT NULL,
                configuration jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, name)
            );
            CREATE TABLE documents (
                tenant_id text NOT NULL,
                collection text NOT NULL,
                doc_id text NOT NULL,
                version text NOT NULL,
                deleted boolean NOT NULL DEFAULT false,
                source_topic text,
                source_partition integer,
                source_offset bigint,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, collection, doc_id),
                FOREIGN KEY (tenant_id, collection) REFERENCES collections ON DELETE CASCADE
            );
            CREATE TABLE chunks (
                row_id bigserial PRIMARY KEY,
                tenant_id text NOT NULL,
                collection text NOT NULL,
                doc_id text NOT NULL,
                chunk_id text NOT NULL,
                chunk_index integer NOT NULL,
                text text NOT NULL,
                start_offset integer NOT NULL,
                end_offset integer NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{}',
                vector bytea NOT NULL,
                content_hash text NOT NULL,
                UNIQUE (tenant_id, collection, chunk_id),
                FOREIGN KEY (tenant_id, collection, doc_id) REFERENCES documents ON DELETE CASCADE
            );
            CREATE INDEX chunks_document ON chunks (tenant_id, collection, doc_id);
            CREATE TABLE applied_offsets (
                topic text NOT NULL,
                partition integer NOT NULL,
                next_offset bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (topic, partition)
            );
            """),
        // The parts of a document version too large for one event, held until the last arrives.
        PostgresMigration(version: 3, name: "pending parts", sql: """
            CREATE TABLE pending_parts (
                tenant_id text NOT NULL,
                collection text NOT NULL,
                doc_id text NOT NULL,
                version text NOT NULL,
                part integer NOT NULL,
                parts integer NOT NULL,
                event bytea NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, collection, doc_id, version, part)
            );
            CREATE INDEX pending_parts_received ON pending_parts (received_at);
            """),
    ])
}
