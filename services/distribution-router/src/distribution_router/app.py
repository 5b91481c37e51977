"""create_app(): distribution-router's composition root; nothing connects at import."""

from __future__ import annotations

import datetime as dt

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceCreated
from nordflow_schemas.topics import DISTRIBUTION_ROUTER, INVOICE_CREATED

from .config import Settings
from .documents.registry import default_registry
from .documents.validation import shared_validator
from .service import distribute_invoice
from .smp import ParticipantLookup


def create_app(settings: Settings | None = None) -> ServiceApp:
    """distribution-router: invoice.created → invoice.distributed | invoice.delivery_failed."""
    settings = settings or Settings()
    app = ServiceApp(DISTRIBUTION_ROUTER, settings, "distribution_router")
    renderers = default_registry()
    lookup: ParticipantLookup | None = None

    async def start() -> None:
        nonlocal lookup
        lookup = ParticipantLookup(
            smp_url=settings.smp_url,
            sml_zone=settings.sml_zone,
            ttl=settings.participant_cache_seconds,
        )
        shared_validator()  # compile the rule files before the first invoice arrives

    async def stop() -> None:
        if lookup is not None:
            await lookup.aclose()

    async def on_invoice_created(ctx: Context, env: Envelope[InvoiceCreated]) -> None:
        """Pick the channel, render and validate; emit distributed or delivery_failed."""
        assert lookup is not None, "started"
        outcome = await distribute_invoice(
            ctx.conn,
            env.body,
            dt.datetime.now(dt.UTC),
            lookup=lookup,
            renderers=renderers,
            validator=shared_validator(),
        )
        if outcome is not None:
            await ctx.emit(outcome, subject=env.subject)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.subscribe(INVOICE_CREATED.name, on_invoice_created)
    return app
