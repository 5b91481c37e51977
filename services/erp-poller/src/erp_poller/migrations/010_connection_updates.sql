-- Each connection's state is published on connection.updated: `revision` counts the
-- publications (0: never published; the start-up step publishes those), `last_success_at`
-- is when a poll last ended without an error, and `removed_at` marks a removed connection
-- (kept, so its revision, cursor and versions seen survive a re-add).
ALTER TABLE connections
    ADD COLUMN revision bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_success_at timestamptz,
    ADD COLUMN removed_at timestamptz;
-- The best we know of earlier polls: one that ended without an error was a success.
UPDATE connections SET last_success_at = last_poll_at
WHERE last_poll_at IS NOT NULL AND last_error IS NULL;
