-- Tenant API tokens (only their SHA-256 is stored) and users' sync requests (manual mode).
CREATE TABLE api_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE sync_requests (
    request_id    bigserial PRIMARY KEY,
    connection_id text NOT NULL REFERENCES connections (connection_id),
    tenant_id     text NOT NULL,
    limit_count   integer CHECK (limit_count > 0),
    document_ids  text[] NOT NULL DEFAULT '{}',
    requested_at  timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    emitted       integer,
    error         text
);
CREATE INDEX sync_requests_pending ON sync_requests (requested_at) WHERE finished_at IS NULL;
