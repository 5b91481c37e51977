-- The seller moves from each connection to the tenant's profile, which erp-poller keeps in the
-- runtime's tenant_profiles table (its authoritative copy; a change is a new revision,
-- published on tenant.updated). A tenant without a profile keeps its first connection's seller
-- here until the service, when it starts, turns it into the tenant's profile (revision 1,
-- published like any other). `problem` says why one could not be (an operator sets it).
CREATE TABLE legacy_sellers (
    tenant_id     text PRIMARY KEY,
    connection_id text NOT NULL,
    seller        jsonb NOT NULL,
    problem       text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO legacy_sellers (tenant_id, connection_id, seller)
SELECT DISTINCT ON (c.tenant_id) c.tenant_id, c.connection_id, c.seller
FROM connections c
WHERE NOT EXISTS (SELECT 1 FROM tenant_profiles p WHERE p.tenant_id = c.tenant_id)
ORDER BY c.tenant_id, c.created_at, c.connection_id;

ALTER TABLE connections DROP COLUMN seller;
