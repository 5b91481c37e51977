-- Per-tenant paper options, and how each attachment travelled with a sent invoice.

-- A tenant's choices for printed letters; NULL = the service's default (PRINT_POST_POSTAGE,
-- PRINT_POST_COLOUR, PRINT_POST_DUPLEX). The send job passes the set ones to the print adapter.
CREATE TABLE paper_options (
    tenant_id  text PRIMARY KEY,
    postage    text CHECK (postage IN ('A', 'B')),
    colour     boolean,
    duplex     boolean,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per hold attachment, how it went with the invoice on the channel that sent it, in the order
-- added: [{filename, content_type, size, handling, pages, reason}], handling = embedded (UBL,
-- bank PDF) | attached (e-mail) | printed (after the invoice in the letter) | not_printed
-- (named on the invoice; reason says why). NULL: the invoice had no attachments.
ALTER TABLE deliveries ADD COLUMN attachments jsonb;
