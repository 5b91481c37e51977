-- Every source system: a connection's configuration stamp (cached clients are rebuilt when it
-- changes), rotating OAuth tokens sealed per connection, and users' backfill requests.
ALTER TABLE connections ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE oauth_tokens (
    connection_id  text PRIMARY KEY REFERENCES connections (connection_id) ON DELETE CASCADE,
    tenant_id      text NOT NULL,
    -- SHA-256 of the credentials' initial refresh token this chain of rotations descends
    -- from: a connection re-added with a new grant starts a new chain.
    grant_id       text NOT NULL,
    tokens_sealed  bytea NOT NULL,
    expires_at     timestamptz NOT NULL,
    rotations      integer NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backfill_requests (
    request_id    bigserial PRIMARY KEY,
    connection_id text NOT NULL REFERENCES connections (connection_id),
    tenant_id     text NOT NULL,
    since         timestamptz NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    not_before    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    listed        integer NOT NULL DEFAULT 0,
    emitted       integer NOT NULL DEFAULT 0,
    finished_at   timestamptz,
    error         text
);
CREATE INDEX backfill_requests_pending ON backfill_requests (not_before)
    WHERE finished_at IS NULL;
CREATE INDEX backfill_requests_connection ON backfill_requests (connection_id, request_id);
