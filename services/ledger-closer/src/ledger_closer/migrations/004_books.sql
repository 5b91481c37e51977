-- Writing into the books: write connections of every system with the tenant's account
-- mapping, what an attempt saw in the ERP before it wrote, documents booked into targets,
-- the transfers seen, and each created invoice's way to its buyer.
ALTER TABLE erp_connections
    ADD COLUMN receivable_account integer NOT NULL DEFAULT 1510,
    ADD COLUMN fee_account integer NOT NULL DEFAULT 6064,
    ADD COLUMN liability_account integer NOT NULL DEFAULT 2840;

-- Noted before an entry's first create where the ERP cannot list what was written
-- (eAccounting: the invoice's remaining amount); the first note stays.
ALTER TABLE entries ADD COLUMN erp_state text;

-- A document written into its target: the intent row is committed before the first call
-- (booking_key = the job key), the outcome in the job's transaction.
CREATE TABLE bookings (
    booking_key   text PRIMARY KEY,
    tenant_id     text NOT NULL,
    invoice_id    text NOT NULL,
    action        text NOT NULL,
    target        text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    erp_reference text,
    records       jsonb,
    booked_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bookings_invoice ON bookings (invoice_id);

CREATE TABLE transfers (
    invoice_id     text PRIMARY KEY,
    tenant_id      text NOT NULL,
    agreement_kind text NOT NULL,
    amount         numeric(18, 2) NOT NULL,
    advance        numeric(18, 2),
    fee            numeric(18, 2),
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- delivery: pending | delivered | failed | uncertain | by_erp; held: a closing's job
-- payload while it waits for the invoice to reach its buyer.
CREATE TABLE documents (
    invoice_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    number      text NOT NULL,
    source      jsonb NOT NULL,
    delivery    text NOT NULL,
    held        jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
