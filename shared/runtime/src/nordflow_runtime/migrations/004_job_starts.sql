-- How often each job was claimed, committed apart from the job's own transaction, so a job
-- whose handler kills the process (and so never records an attempt) is stopped eventually.
-- No foreign key: inserting would wait for the claim's row lock on `jobs`.
CREATE TABLE job_starts (
    job_id  bigint PRIMARY KEY,
    starts  integer NOT NULL
);
