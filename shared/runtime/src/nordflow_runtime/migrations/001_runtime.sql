-- Inbox, outbox and durable jobs: the runtime's tables in every service's own schema.
CREATE TABLE inbox (
    event_id    text PRIMARY KEY,
    topic       text NOT NULL,
    tenant_id   text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_received_at ON inbox (received_at);

CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    event_id    text NOT NULL,
    topic       text NOT NULL,
    tenant_id   text NOT NULL,
    key         bytea,
    value       bytea,
    headers     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE jobs (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    job_key     text NOT NULL,
    tenant_id   text NOT NULL,
    payload     jsonb NOT NULL,
    due_at      timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    result      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (kind, job_key)
);
CREATE INDEX jobs_due ON jobs (kind, due_at) WHERE state = 'pending';
