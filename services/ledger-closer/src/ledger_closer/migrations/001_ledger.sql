-- ERP write credentials per source connection, and every entry written into an ERP.
CREATE TABLE erp_connections (
    connection_id       text PRIMARY KEY,
    tenant_id           text NOT NULL,
    system              text NOT NULL,
    base_url            text NOT NULL,
    token_sealed        bytea NOT NULL,
    mode_of_payment     text NOT NULL DEFAULT 'FACT',
    factoring_account   integer NOT NULL DEFAULT 1512,
    bank_account        integer NOT NULL DEFAULT 1930,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The intent is recorded before the ERP call (unique key), the result after it.
CREATE TABLE entries (
    entry_key     text PRIMARY KEY,
    tenant_id     text NOT NULL,
    invoice_id    text NOT NULL,
    kind          text NOT NULL,
    amount        numeric(18, 2) NOT NULL,
    currency      text NOT NULL,
    account       integer NOT NULL,
    erp_reference text,
    adopted       boolean NOT NULL DEFAULT false,
    posted_at     timestamptz
);
CREATE INDEX entries_invoice ON entries (invoice_id);
