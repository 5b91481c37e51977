-- What distribution-router and factoring-gateway now tell: holds (delivery.hold_updated),
-- decisions on suggestions (channel.suggestion_decided), what each send cost
-- (invoice.distributed), and the batch and file of each transfer (invoice.transferred).
-- Rows recorded before this migration have none of it until `control-panel rebuild`
-- reads the topics again.

-- Each invoice's hold as its highest revision says (the events may come in any order).
CREATE TABLE holds (
    tenant_id   text NOT NULL,
    invoice_id  text NOT NULL,
    number      text,
    revision    integer NOT NULL,
    change      text NOT NULL,
    reason      text,
    held_at     timestamptz NOT NULL,
    held_until  timestamptz NOT NULL,
    released_at timestamptz,
    released_by text,
    needed      jsonb,
    attachments jsonb NOT NULL DEFAULT '[]',
    updated_at  timestamptz NOT NULL,
    test_mode   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, invoice_id)
);
CREATE INDEX holds_open ON holds (tenant_id, held_until) WHERE released_at IS NULL;

-- A suggestion's decision; kept apart from `suggestions` so that either may come first.
CREATE TABLE suggestion_decisions (
    tenant_id     text NOT NULL,
    suggestion_id bigint NOT NULL,
    decision      text NOT NULL CHECK (decision IN ('accepted', 'dismissed')),
    decided_by    text,
    decided_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, suggestion_id)
);

ALTER TABLE deliveries
    ADD COLUMN cost          numeric,
    ADD COLUMN cost_currency text;

ALTER TABLE transfers
    ADD COLUMN batch_id    text,
    ADD COLUMN file_serial bigint;
