-- Attempts after the first on an entry; an intent without erp_reference is in doubt until
-- the ERP has been asked whether an earlier attempt already wrote it.
ALTER TABLE entries ADD COLUMN attempts integer NOT NULL DEFAULT 0;
