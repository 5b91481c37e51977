-- Distribution's report of an invoice ledger-closer has not seen created yet (the two come
-- on different topics, in any order, even within one consumed batch): kept here until
-- invoice.created makes the document, which then starts from this delivery.
CREATE TABLE delivery_reports (
    invoice_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    delivery    text NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now()
);
