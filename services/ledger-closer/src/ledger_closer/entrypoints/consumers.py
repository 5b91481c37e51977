"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import (
    InvoiceCreated,
    InvoiceDeliveryFailed,
    InvoiceDeliveryUncertain,
    InvoiceDistributed,
    InvoiceTransferred,
    PaymentReceived,
)

from .. import service
from ..deps import Deps
from ..domain import Delivery


async def on_invoice_transferred(ctx: Context[Deps], env: Envelope[InvoiceTransferred]) -> None:
    """Plan what the transfer writes, by its agreement's kind."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.schedule_closing(repos, env.body, ctx.deps.closing_delay)


async def on_payment_received(ctx: Context[Deps], env: Envelope[PaymentReceived]) -> None:
    """Plan booking the payment now, where it is to be booked."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.schedule_payment(repos, env.body, ctx.deps.clock())


async def on_invoice_created(ctx: Context[Deps], env: Envelope[InvoiceCreated]) -> None:
    """Keep the invoice (the delivered check) and plan booking it where its flow says."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.record_created(repos, env.body, ctx.deps.clock())


async def on_invoice_distributed(ctx: Context[Deps], env: Envelope[InvoiceDistributed]) -> None:
    """The invoice reached its buyer (a closing held back is planned again)."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.record_delivery(
        repos, env.body.tenant_id, env.body.invoice_id, Delivery.DELIVERED, ctx.deps.clock()
    )


async def on_invoice_delivery_failed(
    ctx: Context[Deps], env: Envelope[InvoiceDeliveryFailed]
) -> None:
    """The invoice could not be sent."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.record_delivery(
        repos, env.body.tenant_id, env.body.invoice_id, Delivery.FAILED, ctx.deps.clock()
    )


async def on_invoice_delivery_uncertain(
    ctx: Context[Deps], env: Envelope[InvoiceDeliveryUncertain]
) -> None:
    """The invoice was sent, its outcome unknown."""
    repos = ctx.deps.repositories(ctx.conn)
    await service.record_delivery(
        repos, env.body.tenant_id, env.body.invoice_id, Delivery.UNCERTAIN, ctx.deps.clock()
    )
