"""The notice of assignment: an invoice under a factoring or financing agreement is paid to
the factor, so every channel shows the factor (payee), its account and the reference."""

from __future__ import annotations

from nordflow_schemas.events import InvoiceFactoringDecided
from nordflow_schemas.invoice import Invoice, Payee


def assigned(invoice: Invoice, decision: InvoiceFactoringDecided) -> Invoice:
    """The invoice as the buyer must see it after ``decision``: unchanged unless it was
    assigned (eligible, with a payee), then paid to the payee's account with the decision's
    payment reference and carrying the notice of assignment."""
    payee = decision.payee
    if not decision.eligible or payee is None:
        return invoice
    payment = invoice.payment.model_copy(
        update={
            "account_id": payee.account_id,
            "account_scheme": payee.scheme,
            "payment_reference": decision.payment_reference or invoice.payment.payment_reference,
        }
    )
    return invoice.model_copy(
        update={
            "payment": payment,
            "payee": Payee(
                name=payee.name,
                company_id=payee.company_id,
                assignment_text=decision.assignment_text,
            ),
        }
    )
