-- Pushed documents: batches received from on-premise agents (idempotent by batch id), documents
-- of manual-mode connections waiting for a user's sync request, and the source's own change
-- time of each pushed document (webhooks may arrive out of order; an older one is ignored).
CREATE TABLE received_batches (
    connection_id text NOT NULL REFERENCES connections (connection_id),
    batch_id      text NOT NULL,
    tenant_id     text NOT NULL,
    body_sha256   text NOT NULL,
    status_code   integer NOT NULL,
    response      jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, batch_id)
);

CREATE TABLE pending_documents (
    connection_id   text NOT NULL REFERENCES connections (connection_id),
    document_id     text NOT NULL,
    tenant_id       text NOT NULL,
    document_number text,
    kind            text NOT NULL,
    payload         json NOT NULL,  -- json, not jsonb: kept byte for byte as received
    related         json NOT NULL,
    version         text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),  -- distinct within a batch
    PRIMARY KEY (connection_id, document_id)
);
CREATE INDEX pending_documents_oldest ON pending_documents (connection_id, received_at);

CREATE TABLE pushed_documents (
    connection_id text NOT NULL REFERENCES connections (connection_id),
    document_id   text NOT NULL,
    tenant_id     text NOT NULL,
    source_time   timestamptz NOT NULL,
    PRIMARY KEY (connection_id, document_id)
);
