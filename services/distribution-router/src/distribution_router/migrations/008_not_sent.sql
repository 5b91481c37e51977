-- A document that is never sent: its connection's flow excludes distribution, or it is a cash
-- receipt already paid through a provider (nothing payable). Recorded with the reason.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('scheduled', 'sent', 'failed', 'uncertain', 'test', 'not_sent')),
    ADD COLUMN not_sent_reason text;
