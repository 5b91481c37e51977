-- The claim check's read model: chunks of documents' contents too large for their
-- erp.document.fetched events, as consumed from erp.document.chunked (a consumer group of its
-- own). One row per (tenant, content SHA-256, index): a chunk delivered again only moves
-- `received_at`. A fetched event with payload_ref is put together from its tenant's rows of
-- that SHA-256 and checked (size, SHA-256) before it is mapped. `mapper payloads purge` (and
-- the hourly purge loop) delete rows not received for PAYLOAD_RETENTION_DAYS.
CREATE TABLE payload_chunks (
    tenant_id   text        NOT NULL,
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    chunk_index integer     NOT NULL CHECK (chunk_index >= 0),
    chunk_count integer     NOT NULL CHECK (chunk_count > chunk_index),
    size        bigint      NOT NULL CHECK (size > 0),
    data        bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256, chunk_index)
);
CREATE INDEX payload_chunks_received_at ON payload_chunks (received_at);
