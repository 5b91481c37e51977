"""Durable job handlers: decode the job, delegate to the use case, emit what it returns."""

from __future__ import annotations

from typing import Any

from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job
from nordflow_schemas.events import InvoiceClosingHeld

from .. import service
from ..deps import Deps
from ..domain import BookingSkippedError, PlannedEntry, UnpostableError
from ..domain.booking import event_of


async def post_entry(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """The ``post-entry`` and ``close-invoice`` jobs: one entry into the tenant's ERP, then
    ledger.entry.posted (or invoice.closing_held for a closing that did not reach its buyer).

    Runs in the job's transaction (the intent row apart). An entry that can never be written
    (refused by the ERP, its authorization refused, nothing to book against) fails the job;
    a payment of a document whose booking was skipped finishes it with nothing written; any
    other error retries it with backoff.
    """
    try:
        outcome = await service.post_entry(
            ctx.deps.repositories(ctx.conn),
            ctx.deps.writers,
            entry_key=job.key,
            tenant_id=job.tenant_id,
            entry=PlannedEntry.from_payload(job.payload),
            payload=job.payload,
            clock=ctx.deps.clock,
        )
    except UnpostableError as exc:
        raise PermanentError(str(exc)) from exc
    except BookingSkippedError as exc:
        # A payment of a document deliberately not booked (a Stripe-paid cash receipt):
        # nothing to write, nothing to announce (its skip was announced).
        return {"not_written": str(exc)}
    if outcome is None:  # planned again when distribution reports the send
        return {"waiting": "for distribution to report the send"}
    await ctx.emit(outcome, subject=outcome.source.document_number)
    if isinstance(outcome, InvoiceClosingHeld):
        return {"held": outcome.reason}
    return {"erp_reference": outcome.erp_reference}


async def book_document(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """The ``book-document`` job: one document into the system its flow books it into, then
    invoice.booked (or invoice.booking_skipped)."""
    event = event_of(job.payload)
    try:
        outcomes = await service.book_document(
            ctx.deps.repositories(ctx.conn),
            ctx.deps.writers,
            event,
            key=job.key,
            clock=ctx.deps.clock,
        )
    except UnpostableError as exc:
        raise PermanentError(str(exc)) from exc
    for outcome in outcomes:
        await ctx.emit(outcome, subject=event.invoice.number)
    return {"emitted": [type(o).__name__ for o in outcomes]}


async def invoice_order(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """The ``invoice-order`` job: a booked order invoiced when its part is due."""
    event = event_of(job.payload)
    try:
        booked = await service.invoice_order(
            ctx.deps.repositories(ctx.conn),
            ctx.deps.writers,
            event,
            key=job.key,
            clock=ctx.deps.clock,
        )
    except UnpostableError as exc:
        raise PermanentError(str(exc)) from exc
    await ctx.emit(booked, subject=event.invoice.number)
    return {"erp_reference": booked.erp_reference}
