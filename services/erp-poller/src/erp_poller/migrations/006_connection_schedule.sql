-- Each connection's own polling interval (NULL: the service's POLL_INTERVAL_SECONDS).
ALTER TABLE connections ADD COLUMN poll_interval_seconds integer
    CHECK (poll_interval_seconds IS NULL OR poll_interval_seconds BETWEEN 1 AND 86400);
