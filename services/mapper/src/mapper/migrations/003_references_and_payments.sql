-- Each tenant's payment-reference policy (set by `mapper references set`).
CREATE TABLE reference_policies (
    tenant_id         text PRIMARY KEY,
    kind              text NOT NULL
                      CHECK (kind IN ('none', 'se_ocr', 'no_kid', 'factor_layout')),
    ocr_control       text NOT NULL DEFAULT 'hard'
                      CHECK (ocr_control IN ('soft', 'hard', 'hard_with_length', 'fixed_length')),
    ocr_lengths       integer[] NOT NULL DEFAULT '{}',
    ocr_length_digit  boolean NOT NULL DEFAULT false,
    kid_algorithm     text NOT NULL DEFAULT 'mod10' CHECK (kid_algorithm IN ('mod10', 'mod11')),
    kid_length        integer,
    kid_allow_dash    boolean NOT NULL DEFAULT false,
    factor_layout     text,
    factoring_number  text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One row per payment document and paid invoice: payment.received goes out once, when the
-- row is inserted; later versions only update what was last seen.
CREATE TABLE payments (
    tenant_id       text NOT NULL,
    system          text NOT NULL,
    connection_id   text NOT NULL,
    payment_id      text NOT NULL,
    invoice_id      text NOT NULL,
    version         text NOT NULL,
    emitted_amount  numeric NOT NULL,
    last_amount     numeric NOT NULL,
    currency        text NOT NULL,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, system, connection_id, payment_id, invoice_id)
);
CREATE INDEX payments_invoice ON payments (tenant_id, invoice_id);
