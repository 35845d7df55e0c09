-- What data-pipeline ingest last loaded per catalog: the file fingerprint and embedding model (for
-- `ingest --if-changed`), the serialised BM25 index the retriever loads, and the ingest report.
CREATE TABLE IF NOT EXISTS catalog_state (
    catalog          text PRIMARY KEY,
    fingerprint      text NOT NULL,
    embedding_model  text NOT NULL,
    embedding_dim    integer NOT NULL,
    item_count       integer NOT NULL,
    bm25_index       bytea,
    report           jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
