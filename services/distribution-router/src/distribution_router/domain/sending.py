"""What the send job and the delivery adapters (one per channel) exchange, and attempt keys.

Exactly-once sending rests on three things the adapters give the job:

- every send carries an idempotency key that is recorded (committed) before the send;
- a partner that can be asked ("did you receive key K?") answers through `lookup`, which the
  job calls before any retry of an attempt whose outcome it does not know;
- a partner that cannot be asked (plain SMTP) says so with `can_lookup = False`; the job
  then never repeats an attempt of unknown outcome and shows it to the user as uncertain.

The adapters' protocol, `Sender`, is in `service.ports`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from nordflow_schemas.events import Channel, ValidationIssue
from nordflow_schemas.invoice import DocumentType, Invoice

# Runs of a send job before it fails (with the default backoff of 2 s doubling to 600 s,
# about three hours of a partner's outage); `jobs retry` resumes a failed one.
MAX_ATTEMPTS = 24


NEGATIVE_INVOICE_RULE = "NF-NEGATIVE-INVOICE"


def never_sendable(invoice: Invoice) -> tuple[ValidationIssue, ...]:
    """Why an invoice must not reach its buyer at all, whatever the channel: an invoice (not
    a credit note) whose amount due is negative. The mapper rejects one already; this is the
    last line, so no channel ever asks a buyer to pay a negative sum."""
    if invoice.document_type is DocumentType.INVOICE and invoice.totals.payable < 0:
        return (
            ValidationIssue(
                field="totals.payable",
                rule=NEGATIVE_INVOICE_RULE,
                message=f"an invoice's amount due is negative ({invoice.totals.payable}): it is "
                "never sent as an invoice; make it a credit note",
            ),
        )
    return ()


def idempotency_key(invoice_id: str, channel: Channel, attempt: int) -> str:
    """The key of one attempt: the partner dedupes on it, and lookups ask for it."""
    return f"{invoice_id}:{channel.value}:{attempt}"


@dataclass(frozen=True)
class Attachment:
    """A file that travels with the invoice (added during a hold, or from the ERP)."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Outgoing:
    """One document to one recipient over one channel."""

    idempotency_key: str
    tenant_id: str
    invoice: Invoice
    # The channel's address: a PEPPOL id "0007:5560360793", an e-mail address, a consumer's
    # personal number, or the postal recipient's name (the address is in `invoice.buyer`).
    recipient: str
    document: bytes
    content_type: str
    filename: str
    attachments: tuple[Attachment, ...] = ()
    # Per-tenant channel options, e.g. paper: {"postage": "economy", "color": "false"}.
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """What the partner answered for an accepted send."""

    channel: Channel
    reference: str  # the partner's id: transmission id, Message-ID, letter id, e-invoice id
    cost: Decimal | None = None  # the partner's price, when it gives one (SEK)


class SendError(Exception):
    """A send that did not go through; the message never contains a secret."""


class TransientSendError(SendError):
    """Worth retrying with backoff (timeouts, 5xx, 429, connection errors).

    ``maybe_delivered``: the request (or the whole e-mail) went out and no answer came back,
    so the partner may have the document. With ``can_lookup`` the job asks ``lookup`` before
    the retry; without (SMTP) it must not repeat the attempt. ``retry_after``: the partner's
    Retry-After hint in seconds (429/503), when it gave one.
    """

    def __init__(
        self, message: str, *, maybe_delivered: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Retrying will not help; ``fallback`` says whether the next channel should be tried
    (a bounced e-mail address → paper) rather than the user having to fix the data first.
    """

    def __init__(self, message: str, *, fallback: bool) -> None:
        super().__init__(message)
        self.fallback = fallback
