"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceTransferred, PaymentReceived

from .. import service
from ..deps import Deps


async def on_invoice_transferred(ctx: Context[Deps], env: Envelope[InvoiceTransferred]) -> None:
    """Plan the closing entry after the configured delay."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.schedule_closing(repos, env.body, ctx.deps.closing_delay)


async def on_payment_received(ctx: Context[Deps], env: Envelope[PaymentReceived]) -> None:
    """Plan booking the payment now, unless the ERP it came from already holds it."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.schedule_payment(repos, env.body, ctx.deps.clock())
