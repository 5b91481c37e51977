"""Deciding each offered invoice once (``invoice.created``), and following its later
versions (``invoice.updated``): withdrawn when paid before its window, a due-date change
for the provider when it moved after transfer. Both take a consumed batch at a time (its
invoices, its tenants' agreements and profiles read, its decisions kept, with one statement
each) and give what taking its events one by one would."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence

from nordflow_schemas.events import InvoiceCreated, InvoiceFactoringDecided, InvoiceUpdated
from nordflow_schemas.invoice import DocumentType, Invoice
from nordflow_schemas.tenant import TenantProfile, tenant_zone

from ..domain.agreements import Agreement
from ..domain.batches import InvoiceState, OfferedInvoice
from ..domain.eligibility import Original, eligibility, open_reason
from ..domain.formats import FormatRegistry
from ..domain.windows import next_window
from .ports import InvoiceRepository, Repositories

NOT_OFFERED = "the connection's flow does not include factoring"
NO_AGREEMENT = "tenant has no factoring agreement"

Trace = tuple[str | None, str | None]  # traceparent, tracestate
_NO_TRACE: Trace = (None, None)
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def choose_agreement(
    formats: FormatRegistry,
    agreements: Sequence[Agreement],
    invoice: Invoice,
    now: dt.datetime,
    *,
    profile: TenantProfile | None,
    original: Original | None,
) -> tuple[Agreement | None, str]:
    """The first agreement that takes the invoice, or None and why none does.

    Each agreement judges the invoice's age at the date of its own next window, in the
    tenant's zone (its profile's; without one, the seller's country's).
    """
    if not agreements:
        return None, NO_AGREEMENT
    zone = tenant_zone(profile, invoice.seller.address.country_code)
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
    trace: Trace = _NO_TRACE,
) -> InvoiceFactoringDecided | None:
    """Decide one created invoice (``decide_batch`` of one)."""
    [decided] = await decide_batch(repos, formats, [event], lambda: now, traces=[trace])
    return decided


async def decide_batch(
    repos: Repositories,
    formats: FormatRegistry,
    events: Sequence[InvoiceCreated],
    clock: Callable[[], dt.datetime],
    *,
    traces: Sequence[Trace] | None = None,
) -> list[InvoiceFactoringDecided | None]:
    """Decide created invoices once each, in order; per event, the decision to announce
    (None when its invoice was decided before, in an earlier batch or earlier in this one,
    or when its flow excludes factoring: then it is only noted).

    An invoice whose newer version came first (``follow_updates`` kept it: the topics have
    no order between them) is decided on that version, which it keeps, and the kept one is
    removed.

    The versions kept early, the events' invoices and the invoices their credit notes
    credit, their tenants' agreements and their profiles are read with one statement each,
    the new decisions kept with one; a credit note sees an original decided earlier in the
    same batch. ``clock`` is read per event, so the decisions keep the events' order.
    ``traces`` (each creation's trace context) are kept for the events of the invoice's
    transfer.
    """
    traces = traces if traces is not None else [_NO_TRACE] * len(events)
    ids = sorted({e.invoice_id for e in events})
    await repos.invoices.lock(ids)  # a version kept meanwhile by another replica is seen
    early = await repos.invoices.take_early_versions(ids)
    events = [_newest(event, early.get(event.invoice_id)) for event in events]
    credited = {
        e.invoice.preceding_invoice.invoice_id
        for e in events
        if e.invoice.document_type is DocumentType.CREDIT_NOTE
        and e.invoice.preceding_invoice is not None
        and e.invoice.preceding_invoice.invoice_id
    }
    known = await repos.invoices.get_many(sorted({e.invoice_id for e in events} | credited))
    tenants = sorted({e.tenant_id for e in events if e.flow.factor})
    agreements = await repos.agreements.of_tenants(tenants) if tenants else {}
    profiles = await repos.profiles.of_tenants(tenants) if tenants else {}
    new: list[OfferedInvoice] = []  # this batch's decisions, in order
    out: list[InvoiceFactoringDecided | None] = []
    for event, trace in zip(events, traces, strict=True):
        if event.invoice_id in known:
            out.append(None)  # decided once: a later copy never overturns it
            continue
        now = clock()
        if not event.flow.factor:
            offered = OfferedInvoice(
                invoice=event.invoice,
                state=InvoiceState.NOT_OFFERED,
                reason=NOT_OFFERED,
                flow=event.flow,
                version=event.version,
                decided_at=now,
            )
            decided = None
        else:
            original = await _original(repos.invoices, event.invoice, known, new)
            offered, decided = _decision(
                formats,
                event,
                now,
                trace,
                [s.agreement for s in agreements.get(event.tenant_id, [])],
                profiles.get(event.tenant_id),
                original,
            )
        known[event.invoice_id] = offered
        new.append(offered)
        out.append(decided)
    # Every invoice of ``new`` was unknown when read: one is not recorded only when another
    # consumer recorded it meanwhile, and then its decision is that one's, not announced here.
    recorded = await repos.invoices.record(new) if new else set()
    return [d if d is not None and d.invoice_id in recorded else None for d in out]


def _newest(event: InvoiceCreated, early: tuple[Invoice, str] | None) -> InvoiceCreated:
    """The created invoice at its newest version: the one kept early, if any (the creation's
    flow, test mode and trace stay)."""
    if early is None or early[0].tenant_id != event.tenant_id:
        return event
    invoice, version = early
    return event.model_copy(update={"invoice": invoice, "version": version})


def _decision(
    formats: FormatRegistry,
    event: InvoiceCreated,
    now: dt.datetime,
    trace: Trace,
    agreements: Sequence[Agreement],
    profile: TenantProfile | None,
    original: Original | None,
) -> tuple[OfferedInvoice, InvoiceFactoringDecided]:
    """The decision of an invoice whose flow includes factoring, and its announcement."""
    invoice = event.invoice
    chosen, reason = choose_agreement(
        formats, agreements, invoice, now, profile=profile, original=original
    )
    state = InvoiceState.PENDING if chosen is not None else InvoiceState.INELIGIBLE
    if event.test_mode:
        state = InvoiceState.TEST
        if chosen is not None:
            reason = f"test mode: would be transferred under {chosen.agreement_id}"
    reference = invoice.payment.payment_reference
    offered = OfferedInvoice(
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
    eligible = state is InvoiceState.PENDING and chosen is not None
    decided = InvoiceFactoringDecided(
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
    return offered, decided


async def _original(
    invoices: InvoiceRepository,
    invoice: Invoice,
    known: dict[str, OfferedInvoice],
    new: Sequence[OfferedInvoice],
) -> Original | None:
    """What is known here of the invoice a credit note credits: by its id (``known`` holds
    every id the batch's credit notes name), else the tenant's newest invoice of that
    number, decided before this batch or in it."""
    reference = invoice.preceding_invoice
    if invoice.document_type is not DocumentType.CREDIT_NOTE or reference is None:
        return None
    found = known.get(reference.invoice_id) if reference.invoice_id else None
    if found is None:
        here = [
            o
            for o in reversed(new)
            if o.tenant_id == invoice.tenant_id
            and o.invoice.number == reference.number
            and o.invoice.document_type is DocumentType.INVOICE
        ]
        before = await invoices.by_number(invoice.tenant_id, reference.number)
        candidates = [*here, *([before] if before is not None else [])]
        # The newest decision wins (as ``by_number`` orders them); on a tie this batch's.
        found = max(candidates, key=lambda o: o.decided_at or _EPOCH, default=None)
    if found is None:
        return None
    return Original(found.agreement_id, found.state.value)


async def follow_update(repos: Repositories, event: InvoiceUpdated) -> None:
    """Follow one newer version (``follow_updates`` of one)."""
    await follow_updates(repos, [event])


async def follow_updates(repos: Repositories, events: Sequence[InvoiceUpdated]) -> None:
    """Keep each newer version, in order: a pending invoice no longer open is withdrawn; a
    due date moved after the invoice went to the provider becomes a change record (once).
    A version of an invoice not seen created yet (its ``invoice.created``, on another topic,
    comes later) is kept for its creation, the last that came of each invoice
    (``decide_batch`` decides on it).

    The events' invoices are read with one statement, their newest versions kept with one,
    the early ones with one, and the withdrawals with one per reason; a later event of the
    same invoice sees what an earlier one changed.
    """
    ids = sorted({e.invoice_id for e in events})
    await repos.invoices.lock(ids)  # a creation applied meanwhile by another replica is seen
    known = await repos.invoices.get_many(ids)
    newest: dict[str, tuple[Invoice, str]] = {}
    early: dict[str, tuple[Invoice, str]] = {}  # not created yet: the last that came
    withdrawn: dict[str, str] = {}  # invoice id → reason
    changes: list[tuple[str, str, str, dt.date, dt.date]] = []
    for event in events:
        offered = known.get(event.invoice_id)
        if offered is None:
            early[event.invoice_id] = (event.invoice, event.version)
            continue
        if offered.version == event.version:
            continue
        invoice = event.invoice
        offered = dataclasses.replace(offered, invoice=invoice, version=event.version)
        newest[event.invoice_id] = (invoice, event.version)
        moved = invoice.due_date is not None and invoice.due_date != offered.factor_due_date
        if offered.state is InvoiceState.PENDING:
            if reason := open_reason(invoice):
                offered = dataclasses.replace(offered, state=InvoiceState.WITHDRAWN, reason=reason)
                withdrawn[event.invoice_id] = reason
        elif (
            offered.state in (InvoiceState.BATCHED, InvoiceState.TRANSFERRED)
            and offered.agreement_id is not None
            and offered.factor_due_date is not None
            and invoice.due_date is not None
            and moved
        ):
            changes.append(
                (
                    event.invoice_id,
                    offered.agreement_id,
                    event.version,
                    offered.factor_due_date,
                    invoice.due_date,
                )
            )
            offered = dataclasses.replace(offered, factor_due_date=invoice.due_date)
        known[event.invoice_id] = offered
    if newest:
        await repos.invoices.update_invoices(
            [(invoice_id, invoice, version) for invoice_id, (invoice, version) in newest.items()]
        )
    if early:
        await repos.invoices.keep_early_versions(
            [(invoice_id, invoice, version) for invoice_id, (invoice, version) in early.items()]
        )
    for reason in sorted(set(withdrawn.values())):
        ids = [i for i, r in withdrawn.items() if r == reason]
        await repos.invoices.set_state(ids, InvoiceState.WITHDRAWN, reason)
    for invoice_id, agreement_id, version, old_due_date, new_due_date in changes:
        await repos.changes.record(invoice_id, agreement_id, version, old_due_date, new_due_date)
        await repos.invoices.set_factor_due_date(invoice_id, new_due_date)
