-- Tenant API tokens: a scope (read: GET only; operate: everything), an expiry, and the
-- operator flag every service's table shares with the control panel's. Applied after the
-- service's own migrations (scope `api-tokens`), to the `api_tokens` table of a service that
-- has one; a service without a tenant API has none and nothing changes.
DO $$
BEGIN
    IF to_regclass('api_tokens') IS NOT NULL THEN
        ALTER TABLE api_tokens
            ADD COLUMN IF NOT EXISTS scope text NOT NULL DEFAULT 'operate'
                CHECK (scope IN ('read', 'operate')),
            ADD COLUMN IF NOT EXISTS expires_at timestamptz,
            ADD COLUMN IF NOT EXISTS operator boolean NOT NULL DEFAULT false;
        -- Tokens from before expiry existed live one more year from now.
        UPDATE api_tokens SET expires_at = now() + interval '365 days' WHERE expires_at IS NULL;
        ALTER TABLE api_tokens ALTER COLUMN expires_at SET NOT NULL;
        CREATE INDEX IF NOT EXISTS api_tokens_tenant ON api_tokens (tenant_id, created_at);
    END IF;
END
$$;
