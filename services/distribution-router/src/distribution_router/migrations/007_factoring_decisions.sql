-- factoring-gateway's decision per invoice (invoice.factoring_decided), and the created
-- invoices whose flow includes factoring that wait for it before they are routed.
CREATE TABLE factoring_decisions (
    invoice_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    decision    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE awaiting_factoring (
    invoice_id text PRIMARY KEY,
    tenant_id  text NOT NULL,
    created    jsonb NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX awaiting_factoring_tenant ON awaiting_factoring (tenant_id, parked_at);
