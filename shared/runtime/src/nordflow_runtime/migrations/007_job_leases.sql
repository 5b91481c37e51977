-- Leased jobs: a job of a kind run under a lease is `running` while a process works on it,
-- with no transaction open across the handler's partner calls. `lease` says which run holds
-- it; `due_at` of a running job is when its lease runs out (its run renews it), after which
-- any process may claim it again. One partial index answers both claims.
ALTER TABLE jobs ADD COLUMN lease uuid;
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('pending', 'running', 'done', 'failed'));
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (kind, due_at) WHERE state IN ('pending', 'running');
