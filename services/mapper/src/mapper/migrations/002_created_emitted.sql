-- invoice.created goes out once per invoice, even if a later version is rejected and fixed.
ALTER TABLE invoices ADD COLUMN created_emitted boolean NOT NULL DEFAULT false;
UPDATE invoices SET created_emitted = true WHERE status = 'created';
