-- How many times an entry was attempted; an intent with attempts > 0 and no reference is in doubt.
ALTER TABLE entries ADD COLUMN attempts integer NOT NULL DEFAULT 0;
