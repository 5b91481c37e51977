"""Eligibility under a tenant's agreement (pure rules)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nordflow_schemas.events import AgreementKind
from nordflow_schemas.invoice import DocumentType, Invoice


@dataclass(frozen=True)
class Agreement:
    """What a tenant's provider accepts."""

    tenant_id: str
    provider: str
    kind: AgreementKind
    enabled: bool = True
    max_age_days: int = 30
    include_credit_notes: bool = True
    payment_methods: frozenset[str] | None = None
    currencies: frozenset[str] = frozenset({"SEK", "NOK", "EUR"})


def eligibility(agreement: Agreement | None, invoice: Invoice, today: dt.date) -> str | None:
    """None if the invoice may be transferred, else the reason it may not."""
    if agreement is None:
        return "tenant has no factoring agreement"
    if not agreement.enabled:
        return "agreement is disabled"
    if invoice.document_type is DocumentType.CREDIT_NOTE and not agreement.include_credit_notes:
        return "credit notes are not transferred under this agreement"
    if (today - invoice.issue_date).days > agreement.max_age_days:
        return f"invoice date is more than {agreement.max_age_days} days back"
    if invoice.currency not in agreement.currencies:
        return f"currency {invoice.currency} is not covered by the agreement"
    if invoice.outstanding_amount is not None and invoice.outstanding_amount == 0:
        return "invoice is not open (nothing outstanding)"
    if agreement.payment_methods is not None and (
        invoice.payment_method not in agreement.payment_methods
    ):
        return f"payment method {invoice.payment_method!r} is not a factoring one"
    return None
