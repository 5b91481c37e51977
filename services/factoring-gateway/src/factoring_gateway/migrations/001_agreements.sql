-- Each tenant's provider agreement, the eligibility decision per invoice, and the transfers.
CREATE TABLE agreements (
    tenant_id       text PRIMARY KEY,
    provider        text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('factoring', 'financing', 'invoice_service')),
    enabled         boolean NOT NULL DEFAULT true,
    max_age_days    integer NOT NULL DEFAULT 30 CHECK (max_age_days > 0),
    include_credit_notes boolean NOT NULL DEFAULT true,
    payment_methods text[],
    currencies      text[] NOT NULL DEFAULT ARRAY['SEK', 'NOK', 'EUR'],
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE decisions (
    invoice_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    eligible    boolean NOT NULL,
    reason      text NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transfers (
    transfer_id    text PRIMARY KEY,
    invoice_id     text NOT NULL UNIQUE,
    tenant_id      text NOT NULL,
    provider       text NOT NULL,
    amount         numeric(18, 2) NOT NULL,
    currency       text NOT NULL,
    transferred_at timestamptz NOT NULL DEFAULT now()
);
