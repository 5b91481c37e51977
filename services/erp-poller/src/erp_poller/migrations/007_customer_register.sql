-- The customer register of an on-premise connection, pushed by its agent: SIE 4 names a
-- voucher's customer only by its dimension-8 object, so name, identifiers, e-mail, GLN and
-- postal address come from here (looked up when an SIE batch is ingested).
CREATE TABLE customers (
    connection_id   text NOT NULL REFERENCES connections (connection_id),
    customer_number text NOT NULL,  -- the dimension-8 (kund) object id in SIE files
    tenant_id       text NOT NULL,
    customer        jsonb NOT NULL,  -- the register entry as pushed (validated, normalised)
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, customer_number)
);
