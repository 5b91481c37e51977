-- A newer version (invoice.updated) of an invoice this service has not seen created yet: the
-- two come on different topics, in any order, even within one consumed batch. Kept here,
-- one row per invoice (the version that came last: versions are content hashes, with no
-- order of their own, and one invoice's updates come in order on one partition), until its
-- invoice.created is decided on this content and removes the row.
CREATE TABLE early_versions (
    invoice_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    version     text NOT NULL,
    invoice     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
