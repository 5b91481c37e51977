-- The outcome of each delivery, the checksum of what was sent, and the errors of a failure.
ALTER TABLE deliveries
    ADD COLUMN status text NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'failed')),
    ADD COLUMN document_sha256 text,
    ADD COLUMN errors jsonb;
