"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime import telemetry
from nordflow_runtime.consumer import Context
from nordflow_runtime.personal_data import open_invoice
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated, InvoiceUpdated

from ..deps import Deps
from ..service import decisions


async def on_invoice_created(ctx: Context[Deps], env: Envelope[InvoiceCreated]) -> None:
    """Decide the invoice once; announce the decision (invoice.factoring_decided). The
    processing span's trace is kept, so the invoice's transfer continues its journey."""
    deps = ctx.deps
    body = env.body.model_copy(update={"invoice": open_invoice(deps.personal, env.body.invoice)})
    decided = await decisions.decide(
        deps.repositories(ctx.conn),
        deps.formats,
        body,
        deps.clock(),
        trace=telemetry.current(),
    )
    if decided is not None:
        await ctx.emit(decided, subject=env.subject)


async def on_invoice_updated(ctx: Context[Deps], env: Envelope[InvoiceUpdated]) -> None:
    """Follow a newer version: withdraw a paid pending invoice, record a moved due date."""
    body = env.body.model_copy(
        update={"invoice": open_invoice(ctx.deps.personal, env.body.invoice)}
    )
    await decisions.follow_update(ctx.deps.repositories(ctx.conn), body, ctx.deps.clock())
