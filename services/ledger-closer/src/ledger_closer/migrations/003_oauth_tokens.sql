-- ledger-closer's own OAuth grants (Fortnox): the rotating tokens of each write connection,
-- sealed. erp-poller keeps its own grant of the same company in its own schema, so neither
-- service ever spends the other's refresh token.
CREATE TABLE oauth_tokens (
    connection_id  text PRIMARY KEY REFERENCES erp_connections (connection_id) ON DELETE CASCADE,
    tenant_id      text NOT NULL,
    -- SHA-256 of the credentials' initial refresh token this chain of rotations descends
    -- from: a connection re-added with a new grant starts a new chain.
    grant_id       text NOT NULL,
    tokens_sealed  bytea NOT NULL,
    expires_at     timestamptz NOT NULL,
    rotations      integer NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
