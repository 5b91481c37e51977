-- control-panel's read model of every topic, its API tokens and web sessions.

-- Every event of an invoice's journey, once (by event id); the summary below is recomputed
-- from all of an invoice's steps, so it does not depend on the order they arrived in.
CREATE TABLE steps (
    event_id     text PRIMARY KEY,
    tenant_id    text NOT NULL,
    invoice_id   text NOT NULL,
    kind         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    trace_id     text,
    test_mode    boolean NOT NULL DEFAULT false,
    facts        jsonb NOT NULL,
    errors       jsonb NOT NULL DEFAULT '[]',
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX steps_invoice ON steps (tenant_id, invoice_id);
CREATE INDEX steps_kind_time ON steps (kind, occurred_at);

CREATE TABLE invoices (
    tenant_id         text NOT NULL,
    invoice_id        text NOT NULL,
    number            text,
    customer          text,
    customer_key      text,
    source_system     text,
    connection_id     text,
    document_id       text,
    document_type     text,
    currency          text,
    amount            numeric,
    issue_date        date,
    due_date          date,
    status            text NOT NULL,
    channel           text,
    partner_reference text,
    archive_sequence  bigint,
    error_count       integer NOT NULL DEFAULT 0,
    test_mode         boolean NOT NULL DEFAULT false,
    trace_id          text,
    first_seen_at     timestamptz NOT NULL,
    last_event_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id)
);
CREATE INDEX invoices_by_tenant ON invoices (tenant_id, first_seen_at DESC, invoice_id DESC);
CREATE INDEX invoices_by_time ON invoices (first_seen_at DESC, invoice_id DESC);
CREATE INDEX invoices_number ON invoices (tenant_id, lower(number));

-- The newest canonical invoice (invoice.created / invoice.updated) of each invoice.
CREATE TABLE invoice_documents (
    tenant_id   text NOT NULL,
    invoice_id  text NOT NULL,
    event_id    text NOT NULL,
    occurred_at timestamptz NOT NULL,
    document    jsonb NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id)
);

-- Every natural key is taken within its tenant: no tenant's event ever shadows another's.
CREATE TABLE transfers (
    transfer_id    text NOT NULL,
    tenant_id      text NOT NULL,
    invoice_id     text NOT NULL,
    number         text NOT NULL,
    provider       text NOT NULL,
    agreement_kind text NOT NULL,
    amount         numeric NOT NULL,
    currency       text NOT NULL,
    transferred_at timestamptz NOT NULL,
    test_mode      boolean NOT NULL,
    PRIMARY KEY (tenant_id, transfer_id)
);
CREATE INDEX transfers_by_tenant ON transfers (tenant_id, transferred_at DESC);

CREATE TABLE deliveries (
    event_id          text PRIMARY KEY,
    tenant_id         text NOT NULL,
    invoice_id        text NOT NULL,
    number            text NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('distributed', 'failed', 'uncertain')),
    channel           text NOT NULL,
    document_format   text NOT NULL,
    recipient         text,
    partner_reference text,
    archive_sequence  bigint,
    fallbacks         jsonb NOT NULL DEFAULT '[]',
    occurred_at       timestamptz NOT NULL,
    test_mode         boolean NOT NULL
);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, occurred_at);

CREATE TABLE suggestions (
    tenant_id         text NOT NULL,
    suggestion_id     bigint NOT NULL,
    invoice_id        text NOT NULL,
    customer_key      text NOT NULL,
    current_channel   text NOT NULL,
    suggested_channel text NOT NULL,
    recipient         text NOT NULL,
    suggested_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, suggestion_id)
);

CREATE TABLE payments (
    tenant_id          text NOT NULL,
    payment_id         text NOT NULL,
    invoice_id         text NOT NULL,
    amount             numeric NOT NULL,
    currency           text NOT NULL,
    paid_on            date NOT NULL,
    payer              text NOT NULL,
    reference          text,
    recorded_at_source boolean NOT NULL,
    received_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, payment_id)
);

CREATE TABLE ledger_entries (
    tenant_id     text NOT NULL,
    invoice_id    text NOT NULL,
    entry_kind    text NOT NULL,
    erp_reference text NOT NULL,
    amount        numeric NOT NULL,
    currency      text NOT NULL,
    account       text NOT NULL,
    posted_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, entry_kind, erp_reference)
);

-- Jobs of every service that failed for good, and whether they were retried since: the
-- newer of job.failed / job.retried (by their own times) wins.
CREATE TABLE failed_jobs (
    service      text NOT NULL,
    job_id       bigint NOT NULL,
    tenant_id    text NOT NULL,
    kind         text NOT NULL,
    job_key      text NOT NULL,
    invoice_id   text,
    state        text NOT NULL CHECK (state IN ('failed', 'pending')),
    attempts     integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    failed_at    timestamptz,
    retried_at   timestamptz,
    retried_by   text,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (service, job_id)
);
CREATE INDEX failed_jobs_by_tenant ON failed_jobs (tenant_id, updated_at DESC);

-- One row per dead letter: the consumer that refused it and where the original sat.
CREATE TABLE dead_letters (
    letter_id        text PRIMARY KEY,
    tenant_id        text NOT NULL,
    consumer         text NOT NULL,
    origin_topic     text NOT NULL,
    origin_partition text NOT NULL,
    origin_offset    text NOT NULL,
    position         text NOT NULL,
    event_id         text,
    event_type       text,
    invoice_id       text,
    subject          text,
    reason           text NOT NULL,
    dead_lettered_at timestamptz NOT NULL
);
CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant_id, dead_lettered_at DESC);

-- Operator actions: the request and the outcome arrive on two topics, in either order.
CREATE TABLE actions (
    action_id    text PRIMARY KEY,
    tenant_id    text NOT NULL,
    service      text NOT NULL,
    action       text NOT NULL,
    target_id    text NOT NULL,
    requested_by text,
    requested_at timestamptz,
    outcome      text,
    message      text,
    completed_at timestamptz
);
CREATE INDEX actions_by_target ON actions (service, target_id);
CREATE INDEX actions_by_tenant ON actions (tenant_id);

CREATE TABLE connections (
    tenant_id       text NOT NULL,
    connection_id   text NOT NULL,
    system          text NOT NULL,
    mode            text NOT NULL,
    revision        bigint NOT NULL,
    last_poll_at    timestamptz,
    last_success_at timestamptz,
    last_error      text,
    next_poll_at    timestamptz,
    removed         boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
);

-- API tokens: a tenant's (sees its own data) or an operator's (every tenant). Hashes only.
CREATE TABLE api_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   text,
    operator    boolean NOT NULL DEFAULT false,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (operator = (tenant_id IS NULL))
);

-- Web sessions (the cookie's hash), each of one token; gone with the token.
CREATE TABLE sessions (
    session_hash text PRIMARY KEY,
    token_hash   text NOT NULL REFERENCES api_tokens (token_hash) ON DELETE CASCADE,
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
