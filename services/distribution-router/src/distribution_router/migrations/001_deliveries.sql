-- The channel chosen for each invoice and when it left.
CREATE TABLE deliveries (
    invoice_id     text PRIMARY KEY,
    tenant_id      text NOT NULL,
    number         text NOT NULL,
    channel        text NOT NULL,
    recipient      text NOT NULL,
    test_mode      boolean NOT NULL,
    distributed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_tenant ON deliveries (tenant_id, channel);
