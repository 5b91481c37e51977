-- The trace context of whatever scheduled a job, so the job's events continue that trace.
ALTER TABLE jobs ADD COLUMN traceparent text, ADD COLUMN tracestate text;
