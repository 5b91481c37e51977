-- The relay counts the unsent rows after every batch (nordflow_outbox_pending and
-- nordflow_outbox_set_aside). Counted through `outbox_unsent` and this index (a row set
-- aside is rare), not by reading every published row kept for the retention period.
CREATE INDEX outbox_set_aside ON outbox (seq) WHERE sent_at IS NULL AND failed_at IS NOT NULL;
