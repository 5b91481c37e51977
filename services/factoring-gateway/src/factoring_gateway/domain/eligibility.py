"""Whether an invoice goes to the provider under an agreement (CloudConnection's rules)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from nordflow_references import ReferenceKind, validate
from nordflow_schemas.invoice import DocumentType, Invoice

from .agreements import Agreement

# A format's own limits on an invoice (field widths …): None when it fits.
FormatCheck = Callable[[Invoice], str | None]


@dataclass(frozen=True)
class Original:
    """What this service knows of the invoice a credit note credits."""

    agreement_id: str | None
    state: str  # the original's state here: pending, batched, transferred, ineligible …


OFFERED_STATES = frozenset({"pending", "batched", "transferred"})


def open_reason(invoice: Invoice) -> str | None:
    """None while the invoice is open; else why it is not (paid or cancelled)."""
    if invoice.outstanding_amount is not None and invoice.outstanding_amount == 0:
        return "invoice is not open (paid or cancelled: nothing outstanding)"
    return None


def eligibility(
    agreement: Agreement,
    invoice: Invoice,
    *,
    window_date: dt.date,
    original: Original | None = None,
    format_check: FormatCheck | None = None,
) -> str | None:
    """None if the invoice goes to the provider under ``agreement``, else why not.

    The first failing rule wins. The invoice date may be at most ``max_age_days`` before
    the date of the window that would transfer it, in the tenant's zone. The payment method
    is the invoice's, else the customer's default. A credit note must be open and credit an
    invoice that went (or goes) to the same provider under the same agreement.
    """
    if not agreement.enabled:
        return "agreement is disabled"
    is_credit = invoice.document_type is DocumentType.CREDIT_NOTE
    if is_credit and not agreement.include_credit_notes:
        return "credit notes are not transferred under this agreement"
    if invoice.currency not in agreement.currencies:
        return f"currency {invoice.currency} is not covered by the agreement"
    method = invoice.payment_method or invoice.customer_payment_method
    if agreement.payment_methods is not None and method not in agreement.payment_methods:
        return f"payment method {method!r} is not a factoring one"
    if reason := open_reason(invoice):
        return reason
    if (window_date - invoice.issue_date).days > agreement.max_age_days:
        return f"invoice date is more than {agreement.max_age_days} days back"
    if agreement.reference.kind is not ReferenceKind.NONE:
        problems = validate(agreement.reference, invoice.payment.payment_reference)
        if problems:
            return "payment reference does not fit the agreement's KID/OCR rules: " + "; ".join(
                problems
            )
    if is_credit:
        if invoice.preceding_invoice is None:
            return "credit note names no credited invoice"
        if original is None:
            return f"credited invoice {invoice.preceding_invoice.number} is not known here"
        if original.agreement_id != agreement.agreement_id or original.state not in (
            OFFERED_STATES
        ):
            return (
                f"credited invoice {invoice.preceding_invoice.number} was not transferred "
                "under this agreement"
            )
    if format_check is not None:
        return format_check(invoice)
    return None
