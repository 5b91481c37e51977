-- Every service's copy of its tenants' profiles, kept from the compacted tenant.updated topic
-- (erp-poller, the owner, writes its authoritative profiles to the same table).
CREATE TABLE tenant_profiles (
    tenant_id   text PRIMARY KEY,
    revision    bigint NOT NULL CHECK (revision > 0),
    profile     jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
