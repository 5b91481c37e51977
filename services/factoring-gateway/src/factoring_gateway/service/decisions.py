"""Deciding each offered invoice once (``invoice.created``), and following its later
versions (``invoice.updated``): withdrawn when paid before its window, a due-date change
for the provider when it moved after transfer."""

from __future__ import annotations

import datetime as dt

from nordflow_schemas.events import InvoiceCreated, InvoiceFactoringDecided, InvoiceUpdated
from nordflow_schemas.invoice import DocumentType, Invoice
from nordflow_schemas.tenant import tenant_zone

from ..domain.agreements import Agreement
from ..domain.batches import InvoiceState, OfferedInvoice
from ..domain.eligibility import Original, eligibility, open_reason
from ..domain.formats import FormatRegistry
from ..domain.windows import next_window
from .ports import Repositories

NOT_OFFERED = "the connection's flow does not include factoring"
NO_AGREEMENT = "tenant has no factoring agreement"


async def _original(repos: Repositories, invoice: Invoice) -> Original | None:
    reference = invoice.preceding_invoice
    if invoice.document_type is not DocumentType.CREDIT_NOTE or reference is None:
        return None
    found = None
    if reference.invoice_id:
        found = await repos.invoices.get(reference.invoice_id)
    if found is None:
        found = await repos.invoices.by_number(invoice.tenant_id, reference.number)
    if found is None:
        return None
    return Original(found.agreement_id, found.state.value)


async def choose_agreement(
    repos: Repositories,
    formats: FormatRegistry,
    agreements: list[Agreement],
    invoice: Invoice,
    now: dt.datetime,
) -> tuple[Agreement | None, str]:
    """The first agreement that takes the invoice, or None and why none does.

    Each agreement judges the invoice's age at the date of its own next window.
    """
    if not agreements:
        return None, NO_AGREEMENT
    zone = tenant_zone(
        await repos.profiles.get(invoice.tenant_id), invoice.seller.address.country_code
    )
    original = await _original(repos, invoice)
    reasons = []
    for agreement in agreements:
        window_date, _ = next_window(now, agreement.window_start, zone)
        check = (
            formats.get(agreement.file_format).check
            if agreement.file_format in formats.ids
            else None
        )
        reason = eligibility(
            agreement, invoice, window_date=window_date, original=original, format_check=check
        )
        if reason is None:
            return agreement, "eligible"
        reasons.append((agreement.agreement_id, reason))
    if len(reasons) == 1:
        return None, reasons[0][1]
    return None, "no agreement takes it: " + "; ".join(f"{a}: {r}" for a, r in reasons)


async def decide(
    repos: Repositories,
    formats: FormatRegistry,
    event: InvoiceCreated,
    now: dt.datetime,
    *,
    trace: tuple[str | None, str | None] = (None, None),
) -> InvoiceFactoringDecided | None:
    """Decide a created invoice once; the decision to announce (None when it was decided
    before, or its flow does not include factoring: then nothing is decided, only noted).
    ``trace`` (the creation's trace context) is kept for the events of its transfer."""
    invoice = event.invoice
    if await repos.invoices.get(event.invoice_id) is not None:
        return None  # decided once: a later copy never overturns it
    if not event.flow.factor:
        await repos.invoices.record(
            OfferedInvoice(
                invoice=invoice,
                state=InvoiceState.NOT_OFFERED,
                reason=NOT_OFFERED,
                flow=event.flow,
                version=event.version,
                decided_at=now,
            )
        )
        return None
    stored = await repos.agreements.of_tenant(event.tenant_id)
    chosen, reason = await choose_agreement(
        repos, formats, [s.agreement for s in stored], invoice, now
    )
    state = InvoiceState.PENDING if chosen is not None else InvoiceState.INELIGIBLE
    if event.test_mode:
        state = InvoiceState.TEST
        if chosen is not None:
            reason = f"test mode: would be transferred under {chosen.agreement_id}"
    reference = invoice.payment.payment_reference
    recorded = await repos.invoices.record(
        OfferedInvoice(
            invoice=invoice,
            state=state,
            reason=reason,
            flow=event.flow,
            agreement_id=chosen.agreement_id if chosen is not None else None,
            payment_reference=reference,
            version=event.version,
            decided_at=now,
            trace=trace,
        )
    )
    if not recorded:
        return None
    eligible = state is InvoiceState.PENDING and chosen is not None
    profile = await repos.profiles.get(event.tenant_id)
    return InvoiceFactoringDecided(
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        test_mode=event.test_mode,
        number=invoice.number,
        eligible=eligible,
        reason=reason,
        agreement_id=chosen.agreement_id if chosen is not None else None,
        agreement_kind=chosen.kind if chosen is not None else None,
        provider=chosen.provider if chosen is not None else None,
        payee=chosen.payee if eligible and chosen is not None else None,
        payment_reference=reference if eligible else None,
        assignment_text=(
            chosen.assignment_for(profile.locale.value if profile else None)
            if eligible and chosen is not None
            else None
        ),
        decided_at=now,
    )


async def follow_update(repos: Repositories, event: InvoiceUpdated, now: dt.datetime) -> None:
    """Keep the newer version: a pending invoice no longer open is withdrawn; a due date
    moved after the invoice went to the provider becomes a change record (once)."""
    offered = await repos.invoices.get(event.invoice_id)
    if offered is None or offered.version == event.version:
        return
    invoice = event.invoice
    await repos.invoices.update_invoice(event.invoice_id, invoice, event.version)
    if offered.state is InvoiceState.PENDING:
        if reason := open_reason(invoice):
            await repos.invoices.set_state([event.invoice_id], InvoiceState.WITHDRAWN, reason)
        return
    moved = invoice.due_date is not None and invoice.due_date != offered.factor_due_date
    if (
        offered.state in (InvoiceState.BATCHED, InvoiceState.TRANSFERRED)
        and offered.agreement_id is not None
        and offered.factor_due_date is not None
        and moved
    ):
        assert invoice.due_date is not None
        await repos.changes.record(
            event.invoice_id,
            offered.agreement_id,
            event.version,
            offered.factor_due_date,
            invoice.due_date,
        )
        await repos.invoices.set_factor_due_date(event.invoice_id, invoice.due_date)
