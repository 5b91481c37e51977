"""create_app(): distribution-router's composition root; nothing connects at import."""

from __future__ import annotations

import datetime as dt

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated
from nordflow_schemas.topics import DISTRIBUTION_ROUTER, INVOICE_CREATED

from .config import Settings
from .service import distribute_invoice


async def on_invoice_created(ctx: Context, env: Envelope[InvoiceCreated]) -> None:
    """Pick the channel; emit invoice.distributed."""
    distributed = await distribute_invoice(ctx.conn, env.body, dt.datetime.now(dt.UTC))
    if distributed is not None:
        await ctx.emit(distributed, subject=env.subject)


def create_app(settings: Settings | None = None) -> ServiceApp:
    """distribution-router: invoice.created → invoice.distributed."""
    app = ServiceApp(DISTRIBUTION_ROUTER, settings or Settings(), "distribution_router")
    app.subscribe(INVOICE_CREATED.name, on_invoice_created)
    return app
