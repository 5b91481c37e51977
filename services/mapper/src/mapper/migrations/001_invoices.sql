-- The latest mapped version of each invoice, or its rejection.
CREATE TABLE invoices (
    invoice_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    version     text NOT NULL,
    status      text NOT NULL CHECK (status IN ('created', 'rejected')),
    number      text,
    errors      jsonb,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_tenant ON invoices (tenant_id, status);
