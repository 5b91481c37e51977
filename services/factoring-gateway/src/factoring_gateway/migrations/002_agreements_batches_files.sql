-- The real hand-over: several agreements per tenant, the invoices offered and their states,
-- batches (one gapless serial per agreement each) with their files and invoices, upload
-- attempts, the windows that ran, due-date changes, settlements, and tenant API tokens.
-- The first shape (one agreement per tenant, a decision and an immediate transfer row) is
-- replaced: agreements must be set again (`factoring-gateway agreements set`).
DROP TABLE transfers;
DROP TABLE decisions;
DROP TABLE agreements;

CREATE TABLE agreements (
    agreement_id  text PRIMARY KEY,
    tenant_id     text NOT NULL,
    provider      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('factoring', 'financing', 'invoice_service')),
    enabled       boolean NOT NULL,
    terms         jsonb NOT NULL,       -- everything else of the agreement (no secret)
    sealed_secret bytea,                -- SecretBox-sealed password, private key or token
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agreements_tenant ON agreements (tenant_id, created_at);

-- The serial counter of each agreement's files: allocated in the batch's transaction.
CREATE TABLE file_serials (
    agreement_id text PRIMARY KEY,
    last_serial  bigint NOT NULL CHECK (last_serial >= 0)
);

CREATE TABLE invoices (
    invoice_id        text PRIMARY KEY,
    tenant_id         text NOT NULL,
    number            text NOT NULL,
    document_type     text NOT NULL,
    state             text NOT NULL,
    reason            text NOT NULL,
    agreement_id      text,
    payment_reference text,
    flow              jsonb NOT NULL,
    invoice           jsonb NOT NULL,      -- the newest canonical version
    version           text NOT NULL,
    batch_id          text,
    factor_due_date   date,                -- the due date the provider was given
    traceparent       text,                -- the trace of invoice.created, continued by the
    tracestate        text,                -- events the invoice's transfer emits
    decided_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_pending ON invoices (agreement_id, decided_at) WHERE state = 'pending';
CREATE INDEX invoices_tenant ON invoices (tenant_id, decided_at DESC);
CREATE INDEX invoices_number ON invoices (tenant_id, number);
CREATE INDEX invoices_reference ON invoices (agreement_id, payment_reference);

CREATE TABLE batches (
    batch_id       text PRIMARY KEY,
    tenant_id      text NOT NULL,
    agreement_id   text NOT NULL,
    serial         bigint NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('invoices', 'changes')),
    trigger        text NOT NULL CHECK (trigger IN ('window', 'on_demand', 'resubmit')),
    state          text NOT NULL CHECK (state IN ('recorded', 'transferred', 'refused')),
    window_date    date,
    created_at     timestamptz NOT NULL,
    transferred_at timestamptz,
    reason         text,
    UNIQUE (agreement_id, serial)
);
CREATE INDEX batches_tenant ON batches (tenant_id, created_at DESC);

CREATE TABLE batch_files (
    batch_id    text NOT NULL REFERENCES batches,
    seq         integer NOT NULL,
    name        text NOT NULL,
    media_type  text NOT NULL,
    content     bytea NOT NULL,
    sha256      text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'received', 'refused')),
    receipt     jsonb,
    reason      text,
    answered_at timestamptz,
    PRIMARY KEY (batch_id, seq)
);

CREATE TABLE batch_invoices (
    batch_id          text NOT NULL REFERENCES batches,
    invoice_id        text NOT NULL,
    line              integer NOT NULL,
    number            text NOT NULL,
    amount            numeric(18, 2) NOT NULL,
    currency          text NOT NULL,
    fee               numeric(18, 2) NOT NULL,
    advance           numeric(18, 2),
    payment_reference text,
    active            boolean NOT NULL DEFAULT true,  -- false once the batch is refused
    PRIMARY KEY (batch_id, invoice_id)
);
-- An invoice is in at most one batch that was not refused: the provider never gets it twice.
CREATE UNIQUE INDEX batch_invoices_once ON batch_invoices (invoice_id) WHERE active;

-- Committed on their own connection before the provider is called (the intent).
CREATE TABLE upload_attempts (
    attempt_key text PRIMARY KEY,
    batch_id    text NOT NULL,
    seq         integer NOT NULL,
    attempt     integer NOT NULL,
    state       text NOT NULL DEFAULT 'started',
    detail      text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (batch_id, seq, attempt)
);

CREATE TABLE windows (
    agreement_id text NOT NULL,
    window_date  date NOT NULL,
    ran_at       timestamptz NOT NULL,
    batches      integer NOT NULL DEFAULT 0,
    invoices     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (agreement_id, window_date)
);

CREATE TABLE due_date_changes (
    change_id    bigserial PRIMARY KEY,
    invoice_id   text NOT NULL,
    agreement_id text NOT NULL,
    version      text NOT NULL,
    old_due_date date NOT NULL,
    new_due_date date NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'batched', 'sent', 'refused')),
    batch_id     text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (invoice_id, version)
);

CREATE TABLE settlement_files (
    agreement_id text NOT NULL,
    name         text NOT NULL,
    lines        integer NOT NULL,
    error        text,
    fetched_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agreement_id, name)
);

CREATE TABLE settlement_lines (
    agreement_id   text NOT NULL,
    file_name      text NOT NULL,
    line_no        integer NOT NULL,
    tenant_id      text NOT NULL,
    reference      text,
    invoice_number text,
    paid_on        date NOT NULL,
    currency       text NOT NULL,
    amount         numeric(18, 2) NOT NULL,
    fee            numeric(18, 2) NOT NULL,
    payer          text NOT NULL,
    invoice_id     text,
    state          text NOT NULL CHECK (state IN ('matched', 'unmatched')),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agreement_id, file_name, line_no)
);
CREATE INDEX settlement_lines_tenant ON settlement_lines (tenant_id, state, recorded_at DESC);

-- Tenant API tokens for /api/v1 (only their SHA-256 is stored; see nordflow_runtime.tenants).
CREATE TABLE api_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
