"""create_app(): factoring-gateway's composition root; nothing connects at import."""

from __future__ import annotations

import datetime as dt

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated
from nordflow_schemas.topics import FACTORING_GATEWAY, INVOICE_CREATED

from .config import Settings
from .service import decide_transfer


async def on_invoice_created(ctx: Context, env: Envelope[InvoiceCreated]) -> None:
    """Decide eligibility; emit invoice.transferred for an eligible invoice."""
    transferred = await decide_transfer(ctx.conn, env.body, dt.datetime.now(dt.UTC))
    if transferred is not None:
        await ctx.emit(transferred, subject=env.subject)


def create_app(settings: Settings | None = None) -> ServiceApp:
    """factoring-gateway: invoice.created → invoice.transferred."""
    app = ServiceApp(FACTORING_GATEWAY, settings or Settings(), "factoring_gateway")
    app.subscribe(INVOICE_CREATED.name, on_invoice_created)
    return app
