-- Polls hold a row lock for their duration instead of a lease that outlives a crash.
ALTER TABLE connections DROP COLUMN lease_until;
