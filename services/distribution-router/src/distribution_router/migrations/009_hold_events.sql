-- Holds are announced on delivery.hold_updated: each event is the whole hold with a revision
-- that grows with every change (placed, a file added or removed, released), so readers keep
-- the newest whatever order they read in. The invoice's number and why it was held (the
-- customer's policy or the tenant's default) travel with it.
ALTER TABLE holds
    ADD COLUMN number   text,
    ADD COLUMN reason   text CHECK (reason IN ('customer_policy', 'tenant_policy')),
    ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision > 0);

-- Holds placed before: their number from the delivery routed with them (the reason is unknown).
UPDATE holds h SET number = d.number FROM deliveries d WHERE d.invoice_id = h.invoice_id;
