-- Sending: a delivery is routed at invoice.created and sent later by the send-invoice job.
-- status: scheduled (job pending) → sent | failed | uncertain; 'test' = test mode, never sent.
-- Rows written before this migration were routed, not sent; they keep 'sent'/'failed'.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('scheduled', 'sent', 'failed', 'uncertain', 'test')),
    ADD COLUMN document_format  text,
    ADD COLUMN customer_key     text,
    -- Every channel the recipient can take, in the order tried: [{channel, recipient, document_format}].
    ADD COLUMN route            jsonb,
    ADD COLUMN route_reason     text,
    -- The canonical invoice, so the job renders what was routed.
    ADD COLUMN invoice          jsonb,
    ADD COLUMN due_at           timestamptz,
    ADD COLUMN completed_at     timestamptz,
    ADD COLUMN partner_reference text,
    ADD COLUMN cost             numeric(12, 4),
    ADD COLUMN archive_sequence bigint;
CREATE INDEX deliveries_completed ON deliveries (tenant_id, completed_at);

-- One row per send attempt, inserted and committed on its own before the partner is called
-- (the idempotency key is <invoice id>:<channel>:<attempt of that channel>). A row left in
-- 'sending' is an attempt of unknown outcome: looked up at the partner before any retry.
-- sending | sent | failed (transient, not delivered) | lost (lookup: the partner never got it)
-- | fallback (refused for good, next channel) | rejected (refused for good, no fallback)
-- | uncertain (unknown and cannot be asked: never repeated).
CREATE TABLE delivery_attempts (
    idempotency_key   text PRIMARY KEY,
    tenant_id         text NOT NULL,
    invoice_id        text NOT NULL,
    channel           text NOT NULL,
    attempt           integer NOT NULL CHECK (attempt > 0),
    recipient         text NOT NULL,
    state             text NOT NULL DEFAULT 'sending' CHECK (
        state IN ('sending', 'sent', 'failed', 'lost', 'fallback', 'rejected', 'uncertain')
    ),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    partner_reference text,
    cost              numeric(12, 4),
    error             text,
    UNIQUE (invoice_id, channel, attempt)
);

-- A tenant's channel choice: customer_key '' is the tenant default, any other one customer.
CREATE TABLE channel_overrides (
    tenant_id    text NOT NULL,
    customer_key text NOT NULL DEFAULT '',
    channel      text NOT NULL CHECK (channel IN ('peppol', 'b2c_bank', 'email', 'paper')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_key)
);

-- A cheaper channel found for a customer sent to on paper or by e-mail.
CREATE TABLE channel_suggestions (
    suggestion_id     bigserial PRIMARY KEY,
    tenant_id         text NOT NULL,
    customer_key      text NOT NULL,
    invoice_id        text NOT NULL,
    current_channel   text NOT NULL,
    suggested_channel text NOT NULL,
    recipient         text NOT NULL,
    state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'dismissed', 'accepted')),
    suggested_at      timestamptz NOT NULL,
    decided_at        timestamptz
);
-- Once per customer and channel until the user decides.
CREATE UNIQUE INDEX channel_suggestions_open
    ON channel_suggestions (tenant_id, customer_key, suggested_channel) WHERE state = 'open';
