"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_runtime.personal_data import open_invoice
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated, InvoiceFactoringDecided

from ..deps import Deps
from ..service import factoring


async def on_invoice_created(ctx: Context[Deps], env: Envelope[InvoiceCreated]) -> None:
    """Route, render and validate, and schedule the send (or emit delivery_failed); an invoice
    to be factored first waits for its factoring decision."""
    deps = ctx.deps
    # The consumer's personal number, sealed on the topic, in clear for routing and sending.
    body = env.body.model_copy(update={"invoice": open_invoice(deps.personal, env.body.invoice)})
    outcome = await factoring.invoice_created(
        deps.repositories(ctx.conn), deps.partners, body, deps.clock()
    )
    if outcome is not None:
        await ctx.emit(outcome, subject=env.subject)


async def on_invoice_factoring_decided(
    ctx: Context[Deps], env: Envelope[InvoiceFactoringDecided]
) -> None:
    """Keep the decision; route the invoice that waited for it (assigned: paid to the factor)."""
    deps = ctx.deps
    outcome = await factoring.factoring_decided(
        deps.repositories(ctx.conn), deps.partners, env.body, deps.clock()
    )
    if outcome is not None:
        await ctx.emit(outcome, subject=env.subject)
