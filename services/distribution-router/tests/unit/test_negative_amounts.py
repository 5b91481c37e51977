"""Defence in depth: an invoice (not a credit note) with a negative amount due is never sent
as an invoice, whatever channel its buyer takes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from distribution_router.service.routing import distribute_invoice
from distribution_router.testing import FakeSender, Registered, fake_partners
from distribution_router.testing.fakes import fake_repositories
from distribution_router.testing.invoices import GLN, company, created_event
from hypothesis import given, settings
from hypothesis import strategies as st
from nordflow_schemas.events import Channel, InvoiceCreated, InvoiceDeliveryFailed

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)


def negative(event: InvoiceCreated, payable: Decimal) -> InvoiceCreated:
    totals = event.invoice.totals.model_copy(update={"payable": payable})
    invoice = event.invoice.model_copy(update={"totals": totals})
    return event.model_copy(update={"invoice": invoice})


@settings(max_examples=25, deadline=None)
@given(
    payable=st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("-0.01"), places=2),
    peppol=st.booleans(),
)
async def test_a_negative_invoice_fails_before_any_channel_is_tried(
    payable: Decimal, peppol: bool
) -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    event = negative(created_event(company(gln=peppol)), payable)
    partners = fake_partners(senders, Registered(GLN) if peppol else Registered())

    failed = await distribute_invoice(repos, partners, event, NOW)

    assert isinstance(failed, InvoiceDeliveryFailed)
    first = failed.errors[0]
    assert (first.field, first.rule) == ("totals.payable", "NF-NEGATIVE-INVOICE")
    assert repos.deliveries.scheduled == {}  # type: ignore[attr-defined]
    assert all(sender.calls == 0 for sender in senders.values())
