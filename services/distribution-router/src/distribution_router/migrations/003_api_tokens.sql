-- Tenant API tokens for /api/v1 (only their SHA-256 is stored; see nordflow_runtime.tenants).
CREATE TABLE api_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
