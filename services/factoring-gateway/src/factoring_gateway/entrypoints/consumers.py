"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated

from .. import service
from ..deps import Deps


async def on_invoice_created(ctx: Context[Deps], env: Envelope[InvoiceCreated]) -> None:
    """Decide eligibility; emit invoice.transferred for an eligible invoice."""
    repos = ctx.deps.repositories(ctx.conn)
    transferred = await service.decide_transfer(repos, env.body, ctx.deps.clock())
    if transferred is not None:
        await ctx.emit(transferred, subject=env.subject)
