-- Hold (quarantine) policies, held invoices and their attachments; the immutable archive of
-- every sent document with its per-tenant sequence. See holds.py and archive.py.

-- customer_key '' is the tenant's default; any other key is one customer (it wins).
CREATE TABLE hold_policies (
    tenant_id        text NOT NULL,
    customer_key     text NOT NULL DEFAULT '',
    enabled          boolean NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds > 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_key)
);

-- One row per invoice that was held; it "left" when released early or when held_until passed.
CREATE TABLE holds (
    invoice_id   text PRIMARY KEY,
    tenant_id    text NOT NULL,
    customer_key text NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now(),
    held_until   timestamptz NOT NULL,
    released_at  timestamptz,
    released_by  text
);
CREATE INDEX holds_open ON holds (tenant_id, held_until) WHERE released_at IS NULL;

CREATE TABLE hold_attachments (
    attachment_id bigserial PRIMARY KEY,
    invoice_id    text NOT NULL REFERENCES holds (invoice_id),
    tenant_id     text NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    content       bytea NOT NULL,
    size          integer NOT NULL,
    sha256        text NOT NULL,
    added_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hold_attachments_invoice ON hold_attachments (invoice_id, attachment_id);

-- The tenant's fiscal year for the retention rule: it starts on the 1st of this month
-- (1 = calendar year, the default when a tenant has no row).
CREATE TABLE archive_settings (
    tenant_id               text PRIMARY KEY,
    fiscal_year_start_month smallint NOT NULL CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- The last sequence handed out per tenant; its row lock serialises archiving per tenant, and
-- because it is updated in the archiving transaction a rollback returns the number (no gaps).
CREATE TABLE archive_counters (
    tenant_id     text PRIMARY KEY,
    last_sequence bigint NOT NULL
);

CREATE TABLE archived_documents (
    tenant_id              text NOT NULL,
    sequence               bigint NOT NULL CHECK (sequence > 0),
    invoice_id             text NOT NULL,
    source_document_number text,
    number                 text NOT NULL,
    channel                text NOT NULL,
    document_format        text NOT NULL,
    content_type           text NOT NULL,
    content                bytea NOT NULL,
    size                   integer NOT NULL,
    sha256                 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    sent_at                timestamptz NOT NULL,
    issue_date             date NOT NULL,
    retain_until           date NOT NULL,
    archived_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sequence),
    UNIQUE (tenant_id, invoice_id, channel, sha256)
);
CREATE INDEX archived_documents_source_number
    ON archived_documents (tenant_id, source_document_number, sequence);
CREATE INDEX archived_documents_number ON archived_documents (tenant_id, number, sequence);
CREATE INDEX archived_documents_retain_until ON archived_documents (retain_until);

-- Immutability as a database guarantee, not only a code convention: no UPDATE ever, no
-- DELETE (or TRUNCATE) before the retention period is over (dates compared in UTC).
CREATE FUNCTION archived_documents_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'archived documents are immutable (tenant %, sequence %)',
            OLD.tenant_id, OLD.sequence USING ERRCODE = 'integrity_constraint_violation';
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.retain_until >= (now() AT TIME ZONE 'UTC')::date THEN
            RAISE EXCEPTION 'archived document (tenant %, sequence %) is retained until %',
                OLD.tenant_id, OLD.sequence, OLD.retain_until
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'archived documents cannot be truncated'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER archived_documents_no_update_or_early_delete
    BEFORE UPDATE OR DELETE ON archived_documents
    FOR EACH ROW EXECUTE FUNCTION archived_documents_immutable();
CREATE TRIGGER archived_documents_no_truncate
    BEFORE TRUNCATE ON archived_documents
    FOR EACH STATEMENT EXECUTE FUNCTION archived_documents_immutable();
