"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated

from ..deps import Deps
from ..service.routing import distribute_invoice


async def on_invoice_created(ctx: Context[Deps], env: Envelope[InvoiceCreated]) -> None:
    """Route, render and validate, and schedule the send (or emit delivery_failed)."""
    deps = ctx.deps
    outcome = await distribute_invoice(
        deps.repositories(ctx.conn), deps.partners, env.body, deps.clock()
    )
    if outcome is not None:
        await ctx.emit(outcome, subject=env.subject)
