-- An outbox row Kafka refuses for good (larger than the broker takes, unknown topic) is set
-- aside instead of holding up every row behind it; it stays, with the error, to be replayed.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz, ADD COLUMN last_error text;
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL AND failed_at IS NULL;
