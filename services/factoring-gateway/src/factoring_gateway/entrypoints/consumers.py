"""Consumer handlers: decode nothing more than the envelopes, delegate to the use cases.

Both take a consumed batch's run of their topic's events at once (``subscribe_batch``); an
error in either makes the runtime apply the batch record by record, each a run of one."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_runtime.personal_data import open_invoice
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated, InvoiceUpdated

from ..deps import Deps
from ..service import decisions


async def on_invoice_created(ctx: Context[Deps], envs: list[Envelope[InvoiceCreated]]) -> None:
    """Decide each invoice once, in order; announce each decision (invoice.factoring_decided)
    in its creation's trace, which is kept so that the invoice's transfer continues it."""
    deps = ctx.deps
    bodies = [
        env.body.model_copy(update={"invoice": open_invoice(deps.personal, env.body.invoice)})
        for env in envs
    ]
    decided = await decisions.decide_batch(
        deps.repositories(ctx.conn),
        deps.formats,
        bodies,
        deps.clock,
        traces=[(env.traceparent, env.tracestate) for env in envs],
    )
    for env, decision in zip(envs, decided, strict=True):
        if decision is not None:
            await ctx.emit(decision, subject=env.subject, cause=env)


async def on_invoice_updated(ctx: Context[Deps], envs: list[Envelope[InvoiceUpdated]]) -> None:
    """Follow newer versions, in order: withdraw a paid pending invoice, record a moved due
    date."""
    bodies = [
        env.body.model_copy(update={"invoice": open_invoice(ctx.deps.personal, env.body.invoice)})
        for env in envs
    ]
    await decisions.follow_updates(ctx.deps.repositories(ctx.conn), bodies)
