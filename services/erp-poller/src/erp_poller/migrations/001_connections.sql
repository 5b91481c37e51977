-- Tenants' source connections and the last version seen of each document.
CREATE TABLE connections (
    connection_id text PRIMARY KEY,
    tenant_id     text NOT NULL,
    system        text NOT NULL,
    base_url      text NOT NULL,
    token_sealed  bytea NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('test', 'manual', 'automatic')),
    seller        jsonb NOT NULL,
    cutoff_at     timestamptz NOT NULL,
    cursor_at     timestamptz,
    next_poll_at  timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz,
    last_poll_at  timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_tenant ON connections (tenant_id);

CREATE TABLE documents (
    connection_id text NOT NULL REFERENCES connections (connection_id),
    document_id   text NOT NULL,
    tenant_id     text NOT NULL,
    invoice_id    text NOT NULL,
    version       text NOT NULL,
    versions_seen integer NOT NULL DEFAULT 1,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, document_id)
);
