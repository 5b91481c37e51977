"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nordflow_runtime.consumer import Context, event_scope
from nordflow_runtime.personal_data import open_invoice
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import EventBody, InvoiceCreated, InvoiceFactoringDecided

from ..deps import Deps
from ..service import factoring


async def on_invoice_created(ctx: Context[Deps], envs: list[Envelope[InvoiceCreated]]) -> None:
    """Route, render and validate, and schedule the send (or emit delivery_failed) — a
    consumed batch's invoices at once; an invoice to be factored first waits for its
    factoring decision."""
    deps = ctx.deps
    # The consumer's personal number, sealed on the topic, in clear for routing and sending.
    bodies = [
        env.body.model_copy(update={"invoice": open_invoice(deps.personal, env.body.invoice)})
        for env in envs
    ]
    outcomes = await factoring.invoices_created(
        deps.repositories(ctx.conn),
        deps.partners,
        bodies,
        deps.clock(),
        scope=lambda index: event_scope(envs[index]),  # its send job continues its trace
    )
    await _emit(ctx, envs, outcomes)


async def on_invoice_factoring_decided(
    ctx: Context[Deps], envs: list[Envelope[InvoiceFactoringDecided]]
) -> None:
    """Keep the decisions; route the invoices that waited for them (assigned: paid to the
    factor), a consumed batch's at once."""
    deps = ctx.deps
    outcomes = await factoring.factoring_decisions(
        deps.repositories(ctx.conn),
        deps.partners,
        [env.body for env in envs],
        deps.clock(),
        scope=lambda index: event_scope(envs[index]),
    )
    await _emit(ctx, envs, outcomes)


async def _emit(
    ctx: Context[Deps], envs: Sequence[Envelope[Any]], outcomes: list[EventBody | None]
) -> None:
    for env, outcome in zip(envs, outcomes, strict=True):
        if outcome is not None:
            await ctx.emit(outcome, subject=env.subject, cause=env)
